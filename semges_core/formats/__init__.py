"""File formats read and written: BVH, Praat TextGrid, BEAT annotations, motion .npz, safetensors."""
