// Shapes of the rounds API (active_learning/apis.py).

// Regular tasks: queued + leased + done + paused + cancelled = tasks (active_learning/selectors.py).
export interface RoundCounts {
  tasks: number;
  queued: number;
  paused: number;
  cancelled: number;
  done: number;
  leased: number;
  leases: number;
  qc_items: number;
  waiting: number;
  imported: number;
  is_import: boolean;
  labelings: number;
  found_error: number;
  selected: number;
  selected_wrong: number;
  wrong_answer_share: number | null;
  found_error_share: number | null;
  unfinished: number;
}

export interface RoundProgress {
  stage?: string;
  fraction?: number;
  message?: string;
  error?: string;
  selected?: number;
}

export interface Round {
  id: number;
  number: number;
  state: string;
  strategy: string;
  strategy_params: Record<string, unknown>;
  prm_version: { id: number; name: string; state: string } | null;
  target_size: number | null;
  labelings_per_task: number;
  qc_rate: number;
  retrain: boolean;
  progress: RoundProgress;
  launched_by: string | null;
  created_at: string;
  counts: RoundCounts | null;
  exports: { prm800k: string; stepwise: string };
}

export interface LaunchBody {
  prm_version: number | null;
  strategy: string;
  strategy_params: Record<string, number | string>;
  size: number;
  labelings_per_task: number;
  qc_rate: number;
  retrain: boolean;
}

// Imports (labeling/apis_imports.py).
export interface ImportResult {
  kind: string;
  lines: number;
  created: Record<string, number>;
  skipped: Record<string, number>;
}

export interface ImportLineError {
  line: number;
  field: string | null;
  detail: string;
}

// Training (training/apis.py).
export interface TrainingRun {
  id: number;
  prm_version: number;
  kind: string;
  state: string;
  progress: number;
  attempts: number;
  error: string;
  log: string;
  params: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  heartbeat_at: string | null;
}

export interface PRMVersionOut {
  id: number;
  name: string;
  kind: string;
  state: string;
}

export interface Page<T> {
  count: number;
  results: T[];
}
