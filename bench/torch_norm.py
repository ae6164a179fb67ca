"""PLACEHOLDER: PyTorch peer cases for the norm family (see bench/torch_peer.py)."""


def cases():
    return []
