"""Generated-text attribution speed: ``sw.attribute_generation`` against the bound (one forward and
one vectorised backward of all rows, written by hand) and captum's ``LLMGradientAttribution``, on a
2-layer GPT-2 config, a 32-token prompt and 32 generated tokens, on the CPU, measured in one run.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/generation_bench.py``). Exits non-zero on a
missed goal. inseq is measured when it is installed (``make bench`` installs it beside the pins).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import transformers
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

import saliency_widgets as sw
from _timing import Report, best_seconds
from engine_bench import ms

VOCABULARY, PROMPT, GENERATED, STEPS = 2048, 32, 32, 32


def gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCABULARY, n_embd=128, n_layer=2, n_head=4, n_positions=128,
                                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def word_tokenizer() -> transformers.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocabulary = {word(i): i for i in range(VOCABULARY)}
    word_level = Tokenizer(models.WordLevel(vocabulary, unk_token=word(1)))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token=word(0), unk_token=word(1))


def word(i: int) -> str:
    """Token ``i`` as a three-letter word."""
    return "".join(chr(97 + i // 26 ** k % 26) for k in (2, 1, 0))


def bound(model: torch.nn.Module, prompt: np.ndarray, generated: np.ndarray, times_input: bool) -> np.ndarray:
    """One forward, one vectorised backward of the rows, each row's log-prob selected by gather."""
    sequence = torch.from_numpy(np.concatenate([prompt, generated[:-1]]))[None]
    embedded = model.get_input_embeddings()(sequence).detach().requires_grad_(True)
    logits = model(inputs_embeds=embedded).logits[0, len(prompt) - 1:]
    scores = torch.log_softmax(logits, -1).gather(1, torch.from_numpy(generated)[:, None])[:, 0]
    (grad,) = torch.autograd.grad(scores, embedded, torch.eye(len(generated)), is_grads_batched=True)
    return ((grad * embedded) if times_input else grad).sum(-1)[:, 0].detach().numpy()


def inseq_model(model: torch.nn.Module, tokenizer: transformers.PreTrainedTokenizerFast) -> Any:
    """inseq's input × gradient on the same model, or None where inseq is not installed."""
    try:
        import inseq
    except ImportError:
        return None
    return inseq.load_model(model, "input_x_gradient", tokenizer=tokenizer)


def main() -> int:
    report = Report()
    tokenizer = word_tokenizer()
    rng = np.random.default_rng(0)
    prompt = rng.integers(2, VOCABULARY, PROMPT)
    text = " ".join(word(i) for i in prompt)

    fresh = gpt2()  # the first calls, as a user makes them: a fresh model, nothing measured before
    start = time.perf_counter()
    first = sw.attribute_generation(fresh, prompt, max_new_tokens=GENERATED, method="input_x_gradient")
    first_call = time.perf_counter() - start
    generated = first.generated_ids
    start = time.perf_counter()
    sw.attribute_generation(fresh, prompt, continuation=generated, method="input_x_gradient")
    second_call = time.perf_counter() - start
    print(f"fresh model: generate + attribute {ms(first_call)}, the same again as a given continuation "
          f"{ms(second_call)}")

    model = gpt2()
    captum_ixg = LLMGradientAttribution(LayerGradientXActivation(model, model.get_input_embeddings()), tokenizer)
    captum_ig = LLMGradientAttribution(LayerIntegratedGradients(model, model.get_input_embeddings()), tokenizer)
    target = torch.from_numpy(generated)
    for method in ("gradient", "input_x_gradient"):
        times_input = method == "input_x_gradient"
        ours = sw.attribute_generation(model, prompt, continuation=generated, method=method).matrix
        np.testing.assert_allclose(ours[:, :-1], bound(model, prompt, generated, times_input), atol=1e-4)
        candidates = {"ours": lambda m=method: sw.attribute_generation(model, prompt, continuation=generated, method=m),
                      "bound": lambda t=times_input: bound(model, prompt, generated, t)}
        if times_input:
            theirs = captum_ixg.attribute(TextTokenInput(text, tokenizer), target=target).token_attr.numpy()
            np.testing.assert_allclose(ours[:, :PROMPT], theirs, atol=1e-4)
            candidates["captum"] = lambda: captum_ixg.attribute(TextTokenInput(text, tokenizer), target=target)
            inseq = inseq_model(model, tokenizer)
            if inseq is not None:
                full = text + " " + " ".join(word(i) for i in generated)

                def run_inseq() -> Any:
                    return inseq.attribute(text, generated_texts=full, show_progress=False)

                def probability() -> Any:  # inseq's default target: the probability
                    return sw.attribute_generation(model, prompt, continuation=generated, target="probability")

                rows = run_inseq().sequence_attributions[0].target_attributions.sum(-1).T.numpy()
                np.testing.assert_allclose(probability().matrix[:, :-1], np.nan_to_num(rows[:, :-1]), atol=1e-6)
                candidates.update(inseq=run_inseq, ours_probability=probability)
        t = best_seconds(repeat=7, **candidates)
        print(f"{method}, {GENERATED} rows:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
        report.at_most(f"{method} matrix / the bound (one forward + one batched backward)", t["ours"] / t["bound"], 1.3)
        if times_input:
            report.at_least("input x gradient matrix vs captum LLMGradientAttribution", t["captum"] / t["ours"], 5.0)
            report.note("the bound vs captum LLMGradientAttribution", t["captum"] / t["bound"])
            if "inseq" in t:
                report.at_least("input x gradient matrix (probability target) vs inseq",
                                t["inseq"] / t["ours_probability"], 5.0)
            else:
                print("inseq is not installed: not measured")
    t = best_seconds(repeat=3, warmup=1,
                     ours=lambda: sw.attribute_generation(model, prompt, continuation=generated,
                                                          method="integrated_gradients", steps=STEPS, baseline=0),
                     captum=lambda: captum_ig.attribute(TextTokenInput(text, tokenizer), target=target, n_steps=STEPS))
    print(f"integrated gradients, {STEPS} steps:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
    report.at_least("integrated gradients vs captum LLMGradientAttribution", t["captum"] / t["ours"], 1.0)
    report.note("first call on a fresh model (generate + attribute) / a later call", first_call / second_call)
    return 0 if report.print() else 1


if __name__ == "__main__":
    raise SystemExit(main())
