"""PLACEHOLDER: PyTorch peer cases for the pointwise family (see bench/torch_peer.py)."""


def cases():
    return []
