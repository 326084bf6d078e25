"""Motion maths: rotations, the BEAT skeleton, forward kinematics, motion clips, normalisation.

numpy in, numpy out (torch tensors too, for training); nothing here imports torch.
"""
