"""PLACEHOLDER: PyTorch peer cases for the embed_loss family (see bench/torch_peer.py)."""


def cases():
    return []
