"""PLACEHOLDER: PyTorch peer cases for the matmul family (see bench/torch_peer.py)."""


def cases():
    return []
