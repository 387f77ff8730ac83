// Runs the frontend's checks with Node's own test runner: every src/**/*.test.ts is bundled by
// esbuild for Node (TypeScript and the imports resolved as in the browser build), then the
// bundles are handed to `node --test`, whose exit status is this script's.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const OUT = "node_modules/.cache/stepwise/tests";

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      return testFiles(path);
    }
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

const entries = testFiles("src");
await build({
  entryPoints: entries,
  bundle: true,
  platform: "node",
  format: "esm",
  outdir: OUT,
  outbase: "src",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
const bundles = entries.map((path) => join(OUT, path.slice("src/".length).replace(/\.ts$/, ".mjs")));
const result = spawnSync(process.execPath, ["--test", ...bundles], { stdio: "inherit" });
process.exit(result.status ?? 1);
