// The workspace's keyboard: which key does what. Pure (no DOM state), so node --test covers it.
import type { Rating } from "../labeling";

export const RATINGS: { rating: Rating; label: string; keys: string[]; cls: string }[] = [
  { rating: 1, label: "Great", keys: ["1", "g"], cls: "great" },
  { rating: 0, label: "Okay", keys: ["2", "o"], cls: "okay" },
  { rating: -1, label: "Bad", keys: ["3", "b"], cls: "bad" },
];

export type KeyAction =
  | { kind: "rate"; rating: Rating }
  | { kind: "flag" }
  | { kind: "undo" }
  | { kind: "next" }
  | { kind: "previous" }
  | { kind: "submit" }
  | { kind: "give_up" }
  | { kind: "bad_problem" }
  | { kind: "help" };

export interface KeyInput {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  /** The focused element is a text field: keys are typing, not commands. */
  inTextField?: boolean;
  /** The focused element is a button: Enter clicks it. */
  onButton?: boolean;
}

/** The action for a key press, or null when the workspace leaves the key alone. */
export function keyAction(input: KeyInput): KeyAction | null {
  if (input.ctrlKey || input.metaKey || input.altKey || input.inTextField) {
    return null;
  }
  const key = input.key.length === 1 ? input.key.toLowerCase() : input.key;
  const rating = RATINGS.find((r) => r.keys.includes(key));
  if (rating) {
    return { kind: "rate", rating: rating.rating };
  }
  switch (key) {
    case "?":
      return { kind: "help" };
    case "f":
      return { kind: "flag" };
    case "u":
    case "Backspace":
      return { kind: "undo" };
    case "Enter":
      return input.onButton ? null : { kind: "next" };
    case "n":
    case "j":
    case "ArrowDown":
      return { kind: "next" };
    case "k":
    case "p":
    case "ArrowUp":
      return { kind: "previous" };
    case "s":
      return { kind: "submit" };
    case "x":
      return { kind: "give_up" };
    case "r":
      return { kind: "bad_problem" };
    default:
      return null;
  }
}
