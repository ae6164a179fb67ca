"""PLACEHOLDER: PyTorch peer cases for the conv family (see bench/torch_peer.py)."""


def cases():
    return []
