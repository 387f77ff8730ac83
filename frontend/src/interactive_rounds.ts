// Admins' page for phase-1 rounds (/label/interactive/rounds/): create one (problems, generator,
// K, sampling parameters, labelings per problem) and follow their progress. The API does the
// work (POST/GET /api/labeling/phase1/rounds/); field errors are shown beside their fields.
import { ApiError } from "./api";
import { el } from "./dom";

interface GeneratorRow {
  name: string;
  backend: string;
  model: string;
  is_default: boolean;
  available: boolean;
  problem: string;
}

interface RoundRow {
  id: number;
  number: number;
  state: string;
  labelings_per_task: number;
  strategy_params: {
    generator: string;
    k: number;
    sampling: { temperature: number; top_p: number; max_new_tokens: number; force_answer: boolean };
  };
  created_at: string;
  tasks_total: number;
  tasks_done: number;
}

type Call = <T>(method: string, url: string, body?: unknown) => Promise<T | null>;

const FIELDS: { name: string; label: string; type: string; value: string; hint?: string }[] = [
  { name: "limit", label: "Problems (the first N)", type: "number", value: "20" },
  { name: "split", label: "Split (empty: any)", type: "text", value: "" },
  { name: "problem_ids", label: "Or problem ids", type: "text", value: "", hint: "comma-separated; wins over N" },
  { name: "k", label: "Candidates per step (K)", type: "number", value: "4" },
  { name: "labelings_per_problem", label: "Labelings per problem", type: "number", value: "1" },
  { name: "temperature", label: "Temperature", type: "number", value: "0.7" },
  { name: "top_p", label: "top_p", type: "number", value: "1.0" },
  { name: "max_new_tokens", label: "Tokens per step", type: "number", value: "128" },
  { name: "seed", label: "Seed", type: "number", value: "0" },
];

export async function renderRounds(root: HTMLElement, call: Call): Promise<void> {
  const generator = el("select", { name: "generator", id: "p1-generator" });
  const errors = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLInputElement>();
  const form = el("form", { class: "p1-round-form", novalidate: true });
  form.append(el("label", { for: "p1-generator", text: "Generator" }), generator);
  errors.set("generator", el("span", { class: "field-error" }));
  form.append(errors.get("generator")!);
  for (const f of FIELDS) {
    const input = el("input", { name: f.name, id: `p1-${f.name}`, type: f.type, step: "any" });
    input.value = f.value;
    inputs.set(f.name, input);
    const error = el("span", { class: "field-error" });
    errors.set(f.name, error);
    form.append(el("label", { for: `p1-${f.name}`, text: f.label }), input, error);
    if (f.hint) {
      form.append(el("span", { class: "hint", text: f.hint }));
    }
  }
  const general = el("p", { class: "field-error", role: "alert" });
  const submit = el("button", { type: "submit", class: "primary", text: "Create the round" });
  form.append(el("div", { class: "actions" }, submit), general);
  const table = el("table", { class: "p1-rounds" });

  const refresh = async () => {
    const rows = (await call<RoundRow[]>("GET", "/api/labeling/phase1/rounds/")) ?? [];
    const head = el(
      "tr",
      {},
      ...["Round", "State", "Generator", "K", "Sampling", "Labelings", "Problems done"].map((h) =>
        el("th", { text: h }),
      ),
    );
    table.replaceChildren(
      head,
      ...rows.map((r) =>
        el(
          "tr",
          { "data-round": r.number },
          el("td", { text: String(r.number) }),
          el("td", { text: r.state }),
          el("td", { text: r.strategy_params.generator }),
          el("td", { text: String(r.strategy_params.k) }),
          el("td", {
            text: `T=${r.strategy_params.sampling.temperature}, top_p=${r.strategy_params.sampling.top_p}, ${r.strategy_params.sampling.max_new_tokens} tokens`,
          }),
          el("td", { text: String(r.labelings_per_task) }),
          el("td", { text: `${r.tasks_done} / ${r.tasks_total}` }),
        ),
      ),
    );
    if (!rows.length) {
      table.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No phase-1 round yet." })));
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    errors.forEach((e) => (e.textContent = ""));
    general.textContent = "";
    const body: Record<string, unknown> = { generator: generator.value };
    const ids = inputs.get("problem_ids")!.value.trim();
    if (ids) {
      body.problem_ids = ids.split(/[\s,]+/).filter(Boolean).map(Number);
    } else {
      body.limit = Number(inputs.get("limit")!.value);
      body.split = inputs.get("split")!.value.trim();
    }
    for (const name of ["k", "labelings_per_problem", "max_new_tokens", "seed"]) {
      body[name] = Number(inputs.get(name)!.value);
    }
    body.temperature = Number(inputs.get("temperature")!.value);
    body.top_p = Number(inputs.get("top_p")!.value);
    submit.disabled = true;
    call<RoundRow>("POST", "/api/labeling/phase1/rounds/", body)
      .then(async (created) => {
        general.textContent = "";
        general.className = "hint";
        general.textContent = created ? `Round ${created.number} created.` : "";
        await refresh();
      })
      .catch((err) => {
        general.className = "field-error";
        if (err instanceof ApiError && err.status === 400 && err.body) {
          for (const [field, messages] of Object.entries(err.body)) {
            const target = errors.get(field) ?? general;
            target.textContent = Array.isArray(messages) ? messages.join(" ") : String(messages);
          }
        } else {
          general.textContent = err instanceof Error ? err.message : String(err);
        }
      })
      .finally(() => {
        submit.disabled = false;
      });
  });

  root.replaceChildren(
    el("h1", { text: "Phase-1 rounds" }),
    el("p", {
      class: "muted",
      text: "Labelers steer the generator one step at a time at /label/interactive/: K candidates per step, all rated, one chosen or a step written.",
    }),
    form,
    el("h2", { text: "Rounds" }),
    table,
  );
  try {
    const generators = (await call<GeneratorRow[]>("GET", "/api/training/generators/")) ?? [];
    for (const g of generators) {
      const option = el("option", {
        value: g.name,
        text: `${g.name} (${g.backend}: ${g.model})${g.available ? "" : ` — ${g.problem}`}`,
      });
      option.selected = g.is_default;
      generator.append(option);
    }
    await refresh();
  } catch (err) {
    general.textContent = err instanceof Error ? err.message : String(err);
  }
}
