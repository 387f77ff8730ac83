// The workspace's keyboard map (workspace/keys.ts), run by `node --test` through `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { keyAction } from "../workspace/keys";

test("one key per rating, upper case too", () => {
  assert.deepEqual(keyAction({ key: "1" }), { kind: "rate", rating: 1 });
  assert.deepEqual(keyAction({ key: "O" }), { kind: "rate", rating: 0 });
  assert.deepEqual(keyAction({ key: "b" }), { kind: "rate", rating: -1 });
});

test("moving, finishing and help", () => {
  assert.deepEqual(keyAction({ key: "ArrowDown" }), { kind: "next" });
  assert.deepEqual(keyAction({ key: "k" }), { kind: "previous" });
  assert.deepEqual(keyAction({ key: "s" }), { kind: "submit" });
  assert.deepEqual(keyAction({ key: "x" }), { kind: "give_up" });
  assert.deepEqual(keyAction({ key: "r" }), { kind: "bad_problem" });
  assert.deepEqual(keyAction({ key: "?" }), { kind: "help" });
  assert.deepEqual(keyAction({ key: "Backspace" }), { kind: "undo" });
});

test("keys the workspace leaves alone", () => {
  assert.equal(keyAction({ key: "1", ctrlKey: true }), null, "browser shortcuts");
  assert.equal(keyAction({ key: "r", metaKey: true }), null, "reload");
  assert.equal(keyAction({ key: "g", inTextField: true }), null, "typing a reason");
  assert.equal(keyAction({ key: "Enter", onButton: true }), null, "Enter clicks a focused button");
  assert.deepEqual(keyAction({ key: "Enter" }), { kind: "next" });
  assert.equal(keyAction({ key: "z" }), null);
});
