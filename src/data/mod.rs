//! Data: image folders, IDX files, splits and batches.
