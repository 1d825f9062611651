"""Small models and batches shared by the widget tests (not a test module)."""

from __future__ import annotations

import numpy as np
import torch


def mlp(n_in: int = 8, n_out: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_out)).eval()


def cnn(size: int = 8, n_out: int = 10) -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * size * size, n_out)
    ).eval()


def batch(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


#: The vocabulary of :func:`tiny_bert` (written to a file for a BertTokenizer; nothing is downloaded).
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "great", "a", "long", "dull",
              "plot", "again", "and", "not", "bad", "at", "all", "."]


def tiny_bert(vocab_dir, sentences=("the film was great", "a long dull plot again")):
    """``(model, tokenizer, x)``: a 1-layer BERT classifier (hidden size 16, random weights, 3 labels), a
    ``BertTokenizer`` over :data:`TINY_VOCAB` written to ``vocab_dir``, and ``sentences`` encoded with
    padding (``input_ids``, ``token_type_ids``, ``attention_mask`` as numpy)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    path = vocab_dir / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(path))
    x = dict(tokenizer(list(sentences), padding=True, return_tensors="np"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval(), tokenizer, x


def clipping_cnn() -> torch.nn.Module:
    """conv → ReLU → global mean → linear, output 0 weighing every channel +1 and output 1 weighing every
    channel −1: Grad-CAM of output 1 is ReLU(−Σ_k mean(g)·A_k) with A ≥ 0, so its ReLU clips every pixel."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[4].weight.copy_(torch.tensor([[1.0] * 4, [-1.0] * 4]))
        model[4].bias.zero_()
    return model.eval()


class FlakyModel(torch.nn.Module):
    """:func:`mlp` that raises the error a GPU out of memory gives (``RuntimeError("CUDA out of memory.
    …")``, from the model's own code) while ``failing`` is set."""

    MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB"

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()
        self.failing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.failing:
            raise RuntimeError(self.MESSAGE)
        return self.net(x)
