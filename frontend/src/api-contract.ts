// Compile-time checks that the API, as its OpenAPI schema describes it, still fits the types the
// workspace is written against. `src/generated/api.ts` is generated from /api/schema/ by
// `dev.py` (openapi-typescript) before every type check; a field the server renames, drops or
// retypes fails `tsc` here instead of at run time in a labeler's browser. Nothing is emitted.
import type { components } from "./generated/api";
import type { Assignment, Progress, SubmitStep } from "./labeling";

type Schemas = components["schemas"];
/** `true` when every value of From is a valid To (checked without distributing over unions). */
type Fits<From, To> = [From] extends [To] ? true : false;

// What the server sends must fit what the workspace reads...
export const serverToClient: [
  Fits<Schemas["AssignmentOutput"], Assignment>,
  Fits<Schemas["ProgressOutput"], Progress>,
  Fits<NonNullable<Schemas["SubmitOutput"]["next"]>["assignment"], Assignment>,
] = [true, true, true];

// ...and what the workspace sends must fit what the server accepts.
export const clientToServer: [Fits<SubmitStep, Schemas["StepRatingInput"]>] = [true];
