"""sw.attribute_generation against independent references: captum's LLMGradientAttribution and
hand-written teacher-forced autograd / GradientTape loops, on GPT-2, Llama and T5 configs and a
keras_hub GPT-2 causal LM."""

import numpy as np
import pytest

import saliency_widgets as sw
from saliency_widgets.config import config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORDS = "<pad> <unk> a b c d e f g h = ? the cat sat on mat . Paris London is capital of France".split()
PROMPT = "a = 3 b = 7 c = 1 ? b".replace("3", "c").replace("7", "d").replace("1", "e")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<pad>", unk_token="<unk>")


def _seeded(build):
    torch.manual_seed(0)
    return build().eval()


@pytest.fixture(scope="module")
def gpt2():
    config_ = transformers.GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=2, n_head=2, n_positions=64,
                                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return _seeded(lambda: transformers.GPT2LMHeadModel(config_))


@pytest.fixture(scope="module")
def llama():
    config_ = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                       bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return _seeded(lambda: transformers.LlamaForCausalLM(config_))


@pytest.fixture(scope="module")
def t5():
    config_ = transformers.T5Config(vocab_size=len(WORDS), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                    decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    return _seeded(lambda: transformers.T5ForConditionalGeneration(config_))


def hand_rows(model, prompt, generated, *, score="log_prob", times_input=True, scored=None):
    """Teacher-forced loop, one autograd.grad per generated token (or per ``scored`` token, on the
    same input), at the input embeddings."""
    sequence = torch.tensor(np.concatenate([prompt, generated[:-1]]))[None]
    embedded = model.get_input_embeddings()(sequence).detach().requires_grad_(True)
    rows = []
    for k, token in enumerate(generated if scored is None else scored):
        logits = model(inputs_embeds=embedded).logits[0, len(prompt) - 1 + k]
        value = torch.log_softmax(logits, -1)[token] if score == "log_prob" else logits[token]
        grad, = torch.autograd.grad(value, embedded)
        row = (grad * embedded if times_input else grad).sum(-1)[0].detach().numpy()
        rows.append(np.pad(row, (0, 1)))
    return np.array(rows)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_causal_rows_equal_captum_and_a_hand_loop(request, tokenizer, name):
    from captum.attr import LayerGradientXActivation, LLMGradientAttribution, TextTokenInput

    model = request.getfixturevalue(name)
    result = sw.attribute_generation(model, PROMPT, tokenizer=tokenizer, max_new_tokens=6)
    prompt = np.array(tokenizer(PROMPT)["input_ids"])
    assert result.tokens[:result.prompt_length] == [" " * (i > 0) + w for i, w in enumerate(PROMPT.split())]
    assert result.matrix.shape == (6, len(prompt) + 6) and result.matrix.dtype == np.float32
    np.testing.assert_allclose(result.matrix, hand_rows(model, prompt, result.generated_ids), atol=1e-5)
    captum = LLMGradientAttribution(LayerGradientXActivation(model, model.get_input_embeddings()), tokenizer)
    theirs = captum.attribute(TextTokenInput(PROMPT, tokenizer), target=torch.tensor(result.generated_ids))
    np.testing.assert_allclose(result.matrix[:, :len(prompt)], theirs.token_attr.numpy(), atol=1e-5)
    with torch.no_grad():
        logits = model(torch.tensor(np.concatenate([prompt, result.generated_ids]))[None]).logits[0]
    expected = torch.log_softmax(logits, -1)[np.arange(len(prompt) - 1, len(prompt) + 5), result.generated_ids]
    np.testing.assert_allclose(result.scores, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.probabilities, np.exp(expected.numpy()), rtol=1e-5)


def test_gradient_logit_target_and_contrast_against_the_hand_loop(gpt2, tokenizer):
    prompt = np.array(tokenizer(PROMPT)["input_ids"])
    given = np.array([5, 9, 7])
    plain = sw.attribute_generation(gpt2, prompt, continuation=given, method="gradient", target="logit")
    np.testing.assert_allclose(plain.matrix, hand_rows(gpt2, prompt, given, score="logit", times_input=False),
                               atol=1e-5)
    contrast_id = WORDS.index("Paris")
    contrasted = sw.attribute_generation(gpt2, prompt, continuation=given, contrast=" Paris", tokenizer=tokenizer)
    other = hand_rows(gpt2, prompt, given, score="logit", scored=np.full(3, contrast_id))  # log p(y) − log p(c) = logit difference
    logit = hand_rows(gpt2, prompt, given, score="logit")
    np.testing.assert_allclose(contrasted.matrix, logit - other, atol=1e-5)
    assert contrasted.contrast_tokens == [" Paris"] * 3
    per_position = sw.attribute_generation(gpt2, prompt, continuation=given, contrast=[contrast_id] * 3)
    np.testing.assert_array_equal(per_position.matrix, contrasted.matrix)


def test_rows_are_causal_and_spans_sum_rows(gpt2):
    prompt = np.array([2, 10, 4, 3, 10, 5])
    result = sw.attribute_generation(gpt2, prompt, max_new_tokens=8)
    later = np.triu(np.ones_like(result.matrix, dtype=bool), k=len(prompt))
    assert np.all(result.matrix[later] == 0) and np.all(result.matrix[~later][: len(prompt)] != 0)
    np.testing.assert_allclose(result.span(2, 5), result.matrix[2:5].sum(0), rtol=1e-6)
    np.testing.assert_allclose(result.span(0, -1), result.matrix[:-1].sum(0), rtol=1e-6)
    with pytest.raises(sw.SaliencyError, match="empty"):
        result.span(4, 4)


def test_integrated_gradients_equal_captum_and_are_complete_on_gpt2(gpt2, tokenizer):
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    # captum's layer baseline is the embedding of input id 0 (its default input baseline): baseline=0 here
    result = sw.attribute_generation(gpt2, PROMPT, tokenizer=tokenizer, max_new_tokens=4,
                                     method="integrated_gradients", steps=128, baseline=0)
    prompt_length, generated = result.prompt_length, result.generated_ids
    # Row 0: captum's LLM wrapper. Later rows: there captum holds the earlier generated tokens at
    # their own embeddings; here every context token moves from the baseline (DESIGN §3.8), so a
    # row sums to f(x) − f(baseline): captum's LayerIntegratedGradients on each row's context.
    captum = LLMGradientAttribution(LayerIntegratedGradients(gpt2, gpt2.get_input_embeddings()), tokenizer)
    theirs = captum.attribute(TextTokenInput(PROMPT, tokenizer), target=torch.tensor(generated), n_steps=128)
    np.testing.assert_allclose(result.matrix[0, :prompt_length], theirs.token_attr.numpy()[0], atol=1e-4)
    context = torch.tensor(np.concatenate([tokenizer(PROMPT)["input_ids"], generated[:-1]]))[None]
    for k, token in enumerate(generated):
        def log_prob(ids, k=k, token=token):
            return torch.log_softmax(gpt2(ids).logits[:, prompt_length - 1 + k], -1)[:, token]

        ids = context[:, :prompt_length + k]
        row = LayerIntegratedGradients(log_prob, gpt2.get_input_embeddings()).attribute(
            ids, baselines=torch.zeros_like(ids), n_steps=128).sum(-1)[0]
        np.testing.assert_allclose(result.matrix[k, :prompt_length + k], row.detach().numpy(), atol=1e-4)
    assert result.completeness_error < 0.01 and result.notes == ()
    zero = sw.attribute_generation(gpt2, PROMPT, tokenizer=tokenizer, continuation=result.generated_ids,
                                   method="integrated_gradients", steps=128)
    assert zero.completeness_error < 0.01 and not np.allclose(zero.matrix, result.matrix, atol=1e-4)


def test_llama_completeness_says_why_it_cannot_be_complete_from_zero(llama):
    prompt = np.array([2, 10, 4, 3, 10, 5])
    zero = sw.attribute_generation(llama, prompt, max_new_tokens=4, method="integrated_gradients", steps=32)
    assert zero.notes and "RMSNorm" in zero.notes[0] and "baseline=" in zero.notes[0]
    padded = sw.attribute_generation(llama, prompt, continuation=zero.generated_ids, method="integrated_gradients",
                                     steps=64, baseline=0)  # the pad id: its embedding is all zeros
    assert padded.notes and "unk id" in padded.notes[0]
    unknown = sw.attribute_generation(llama, prompt, continuation=zero.generated_ids, method="integrated_gradients",
                                      steps=64, baseline=1)
    assert unknown.completeness_error < 0.01 and unknown.notes == ()


@pytest.fixture(scope="module")
def bart():
    config_ = transformers.BartConfig(vocab_size=len(WORDS), d_model=16, encoder_layers=1, decoder_layers=1,
                                      encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                      decoder_ffn_dim=32, max_position_embeddings=64, decoder_start_token_id=0,
                                      eos_token_id=1, pad_token_id=0, bos_token_id=0, forced_eos_token_id=None)
    return _seeded(lambda: transformers.BartForConditionalGeneration(config_))


@pytest.mark.parametrize("name", ["t5", "bart"])
def test_encoder_decoder_rows_equal_a_hand_loop(request, name):
    model = request.getfixturevalue(name)
    prompt = np.array([2, 10, 4, 3, 10, 5, 1])
    result = sw.attribute_generation(model, prompt, max_new_tokens=5)
    prefix = {"t5": "", "bart": "model."}[name]
    assert result.encoder_decoder and result.layer == f"{prefix}encoder.embed_tokens + {prefix}decoder.embed_tokens"
    encoder_layer, decoder_layer = model.get_encoder().embed_tokens, model.get_decoder().embed_tokens
    encoder = encoder_layer(torch.tensor(prompt)[None]).detach().requires_grad_(True)
    decoder_ids = torch.tensor(np.concatenate([[0], result.generated_ids[:-1]]))[None]
    decoder = decoder_layer(decoder_ids).detach().requires_grad_(True)
    rows = []
    for k, token in enumerate(result.generated_ids):
        logits = model(inputs_embeds=encoder, decoder_inputs_embeds=decoder).logits[0, k]
        enc_grad, dec_grad = torch.autograd.grad(torch.log_softmax(logits, -1)[token], [encoder, decoder])
        rows.append(np.concatenate([(enc_grad * encoder).sum(-1)[0].detach().numpy(),
                                    (dec_grad * decoder).sum(-1)[0, 1:].detach().numpy(), [0]]))
    np.testing.assert_allclose(result.matrix, np.array(rows), atol=1e-5)


def test_smoothgrad_is_seeded_and_leaves_the_global_random_state(gpt2):
    prompt = np.array([2, 10, 4, 3])
    state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    first = sw.attribute_generation(gpt2, prompt, continuation=[5, 6], method="smoothgrad", n_samples=8, seed=3)
    again = sw.attribute_generation(gpt2, prompt, continuation=[5, 6], method="smoothgrad", n_samples=8, seed=3)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    zero_noise = sw.attribute_generation(gpt2, prompt, continuation=[5, 6], method="smoothgrad", n_samples=2, noise=0.0)
    gradient = sw.attribute_generation(gpt2, prompt, continuation=[5, 6], method="gradient")
    np.testing.assert_allclose(zero_noise.matrix, gradient.matrix, atol=1e-6)
    assert torch.equal(state, torch.random.get_rng_state()) and np.array_equal(numpy_state, np.random.get_state()[1])


def test_sampling_with_a_seed_repeats_and_the_model_is_untouched(gpt2):
    gpt2.train()
    try:
        before = {k: v.clone() for k, v in gpt2.state_dict().items()}
        state = torch.random.get_rng_state()
        options = {"do_sample": True, "seed": 7}
        one = sw.attribute_generation(gpt2, [2, 10, 4], max_new_tokens=6, generate_kwargs=options)
        two = sw.attribute_generation(gpt2, [2, 10, 4], max_new_tokens=6, generate_kwargs=options)
        np.testing.assert_array_equal(one.generated_ids, two.generated_ids)
        assert gpt2.training and all(p.grad is None for p in gpt2.parameters())
        assert all(torch.equal(before[k], v) for k, v in gpt2.state_dict().items())
        assert torch.equal(state, torch.random.get_rng_state())
    finally:
        gpt2.eval()


def test_prompt_forms_give_the_same_rows(gpt2, tokenizer):
    texts = [PROMPT, "the cat sat on the"]
    many = sw.attribute_generation(gpt2, texts, tokenizer=tokenizer, max_new_tokens=3)
    assert isinstance(many, list) and len(many) == 2
    for text, result in zip(texts, many):
        alone = sw.attribute_generation(gpt2, text, tokenizer=tokenizer, max_new_tokens=3)
        np.testing.assert_allclose(result.matrix, alone.matrix, atol=1e-6)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    padded = sw.attribute_generation(gpt2, batch, tokenizer=tokenizer, max_new_tokens=3)
    for result, alone in zip(padded, many):
        np.testing.assert_allclose(result.matrix, alone.matrix, atol=1e-6)
    as_ids = sw.attribute_generation(gpt2, torch.tensor(tokenizer(texts[1])["input_ids"])[None], max_new_tokens=3)
    np.testing.assert_allclose(as_ids.matrix, many[1].matrix, atol=1e-6)


def test_aggregation_sums_both_axes(gpt2, tokenizer):
    result = sw.attribute_generation(gpt2, "the cat sat on the mat .", tokenizer=tokenizer,
                                     continuation=" the cat . the", method="gradient")
    words = result.aggregate("word")
    assert words.tokens == result.tokens  # one word per token with this vocabulary
    sentences = result.aggregate("sentence")
    assert sentences.tokens == ["the cat sat on the mat .", " the cat .", " the"]
    assert sentences.prompt_length == 1 and sentences.matrix.shape == (2, 3)
    np.testing.assert_allclose(sentences.matrix[0], [result.matrix[:3, :7].sum(), result.matrix[:3, 7:10].sum(),
                                                     result.matrix[:3, 10:].sum()], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sentences.scores[0], result.scores[:3].sum(), rtol=1e-6)
    by_regex = result.aggregate(r"\s?the")
    assert by_regex.tokens[0] == "the cat sat on" and by_regex.tokens[1] == " the mat ."
    with pytest.raises(sw.SaliencyError, match="regular expression"):
        result.aggregate("(")


def test_rows_are_chunked_under_the_budget_and_long_contexts_refused(gpt2, monkeypatch):
    big = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=1, n_head=2,
                                                               n_positions=4096)).eval()
    prompt = np.random.default_rng(0).integers(2, len(WORDS), 512)
    calls = []
    backend_type = type(sw.backends.get_backend(big))
    original = backend_type.output_rows
    monkeypatch.setattr(backend_type, "output_rows", lambda self, *a, **k: calls.append(len(a[2])) or original(self, *a, **k))
    monkeypatch.setattr(config, "generation_budget_bytes", 64 << 20)
    result = sw.attribute_generation(big, prompt, continuation=np.arange(128) % 20 + 2, method="gradient")
    assert sum(calls) == 128 and len(calls) > 1 and result.matrix.shape == (128, 640)
    whole = sw.attribute_generation(big, prompt[:32], continuation=np.arange(16) % 20 + 2, method="gradient")
    monkeypatch.setattr(config, "generation_budget_bytes", 1 << 20)
    calls.clear()
    with pytest.raises(sw.SaliencyError, match="generation_budget_bytes"):
        sw.attribute_generation(big, np.full(4096, 3), continuation=[4], method="gradient")
    monkeypatch.setattr(config, "generation_budget_bytes", 256 << 20)
    np.testing.assert_allclose(sw.attribute_generation(big, prompt[:32], continuation=np.arange(16) % 20 + 2,
                                                       method="gradient").matrix, whole.matrix, atol=1e-6)


def test_bidirectional_models_and_bad_arguments_are_refused(gpt2, tokenizer):
    class Bidirectional(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(len(WORDS), 8)
            self.out = torch.nn.Linear(8, len(WORDS))

        def forward(self, ids):
            h = self.embed(ids)
            return self.out(h + h.mean(1, keepdim=True))

    with pytest.raises(sw.SaliencyError, match="not causal"):
        sw.attribute_generation(Bidirectional(), [2, 3, 4], continuation=[5, 6])
    with pytest.raises(sw.SaliencyError, match="needs its tokenizer"):
        sw.attribute_generation(gpt2, "the cat")
    with pytest.raises(sw.SaliencyError, match="2 tokens"):
        sw.attribute_generation(gpt2, "the cat", tokenizer=tokenizer, continuation=" sat", contrast="on the")
    with pytest.raises(sw.SaliencyError, match="unknown target"):
        sw.attribute_generation(gpt2, [2, 3], continuation=[4], target="entropy")
    with pytest.raises(sw.SaliencyError, match="unknown method"):
        sw.attribute_generation(gpt2, [2, 3], continuation=[4], method="gradcam")
    with pytest.raises(sw.SaliencyError, match="max_new_tokens"):
        sw.attribute_generation(gpt2, [2, 3], max_new_tokens=0)
    with pytest.raises(sw.SaliencyError, match="no tokens"):
        sw.attribute_generation(gpt2, [], continuation=[4])
    with pytest.raises(sw.SaliencyError, match="token id"):
        sw.attribute_generation(gpt2, [2, 3], continuation=[4], method="integrated_gradients", baseline=0.5)


@pytest.fixture(scope="module")
def keras_gpt2():
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=len(WORDS), num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=64)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def test_keras_causal_lm_rows_equal_a_gradient_tape_loop(keras_gpt2):
    import tensorflow as tf

    backbone = keras_gpt2.backbone
    prompt = np.array([2, 10, 4, 3, 10, 5])
    result = sw.attribute_generation(keras_gpt2, prompt, max_new_tokens=5)
    assert result.layer.endswith("token_embedding") and result.matrix.shape == (5, 11)
    sequence = np.concatenate([prompt, result.generated_ids[:-1]])[None].astype("int32")
    embedded = tf.Variable(backbone.token_embedding(sequence))
    rows = []
    for k, token in enumerate(result.generated_ids):
        with tf.GradientTape() as tape:
            x = embedded + backbone.position_embedding(embedded)
            for i in range(2):
                x = backbone.get_layer(f"transformer_layer_{i}")(x, decoder_padding_mask=tf.ones_like(sequence))
            logits = backbone.token_embedding(backbone.get_layer("layer_norm")(x), reverse=True)
            score = tf.nn.log_softmax(logits[0, len(prompt) - 1 + k])[int(token)]
        rows.append(np.pad((tape.gradient(score, embedded) * embedded).numpy().sum(-1)[0], (0, 1)))
    np.testing.assert_allclose(result.matrix, np.array(rows), atol=1e-5)
    ig = sw.attribute_generation(keras_gpt2, prompt, continuation=result.generated_ids, method="integrated_gradients",
                                 steps=64)
    assert ig.completeness_error < 0.01


def test_deletion_insertion_over_prompt_tokens_against_a_hand_loop(gpt2, tokenizer):
    from saliency_widgets.generation.checks import deletion_insertion

    prompt = np.array(tokenizer(PROMPT)["input_ids"])
    result = sw.attribute_generation(gpt2, prompt, max_new_tokens=3)
    curves = deletion_insertion(gpt2, result, 1, steps=4, tokenizer=tokenizer)
    assert curves.deletion.shape == curves.insertion.shape == (1, 5)
    order = np.argsort(-result.matrix[1, :len(prompt)], kind="stable")
    sequence = np.concatenate([prompt, result.generated_ids[:-1]])
    for step, count in enumerate(np.round(np.linspace(0, 1, 5) * len(prompt)).astype(int)):
        for curve, keep_top in ((curves.deletion, False), (curves.insertion, True)):
            ids = sequence.copy()
            top = np.isin(np.arange(len(prompt)), order[:count])
            ids[:len(prompt)] = np.where(top == keep_top, prompt, tokenizer.pad_token_id)
            with torch.no_grad():
                logits = gpt2(torch.tensor(ids)[None]).logits[0, len(prompt)]
            expected = torch.log_softmax(logits, -1)[result.generated_ids[1]].item()
            assert curve[0, step] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(curves.deletion[0, 0], result.scores[1], atol=1e-5)
    span = deletion_insertion(gpt2, result, span=(0, 3), steps=2)
    np.testing.assert_allclose(span.deletion[0, 0], result.scores.sum(), atol=1e-4)
    with pytest.raises(sw.SaliencyError, match="aggregated"):
        deletion_insertion(gpt2, result.aggregate("word"))
    with pytest.raises(sw.SaliencyError, match="selected"):
        deletion_insertion(gpt2, result, 3)


def test_signed_gradient_rows_before_a_layernorm_are_said_to_be_rounding_noise(gpt2):
    """GPT-2's token embeddings feed LayerNorms, which ignore a shift along (1, …, 1): the signed
    gradient summed over the embedding axis is 0 up to float rounding, for every model. The result
    says so (DESIGN §7) instead of passing rounding noise off as a map; input × gradient does not cancel."""
    prompt = np.array([2, 10, 4, 3])
    for method in ("gradient", "smoothgrad"):
        options = {"n_samples": 2, "seed": 0} if method == "smoothgrad" else {}
        result = sw.attribute_generation(gpt2, prompt, continuation=[5, 6], method=method, **options)
        assert any("0 up to rounding" in note and "input × gradient" in note for note in result.notes), result.notes
    assert sw.attribute_generation(gpt2, prompt, continuation=[5, 6]).notes == ()
