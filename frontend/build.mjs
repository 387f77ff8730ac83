// Bundles src/ into dist/ (served by Django as static files). No CDN: KaTeX and its fonts are local.
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.ts", "src/console.ts", "src/interactive.ts", "src/console/review.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  target: "es2020",
  outdir: "dist",
  loader: { ".woff2": "file", ".woff": "file", ".ttf": "file" },
  logLevel: "info",
});
cpSync("node_modules/katex/dist/katex.min.css", "dist/katex.min.css");
cpSync("node_modules/katex/dist/fonts", "dist/fonts", { recursive: true });
