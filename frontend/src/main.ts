// Entry point of the browser app; the labeling workspace lands here.
export {};
