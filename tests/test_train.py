"""The training loop: it learns, it is deterministic, it resumes, and its cache is reused."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core import augment, train
from simplecnn.core.models import build_model
from simplecnn.core.train import TrainConfig, fit, predict, train_model

TINY = {"channels": [8, 16], "blocks": [1, 1], "stem": "cifar", "stem_channels": 8}
CONFIG = TrainConfig(epochs=4, batch_size=32, lr=0.2, augment=("flip",), seed=3)


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet", 3, **TINY)


def test_tiny_resnet_learns_a_separable_task(bands):
    model = tiny_model()
    history = fit(model, bands.train, CONFIG, val=bands.val)
    assert len(history) == 4 and history[-1]["train_loss"] < history[0]["train_loss"]
    test_acc = (predict(model, bands.test.images).argmax(1) == bands.test.labels).float().mean().item()
    assert test_acc > 0.8  # chance is 1/3


def test_cpu_bf16_trains_in_bf16_and_still_learns(bands):
    from dataclasses import replace
    fp32, bf16 = tiny_model(), tiny_model()
    fit(fp32, bands.train, CONFIG)
    fit(bf16, bands.train, replace(CONFIG, cpu_bf16=True))
    conv = next(n for n, p in fp32.named_parameters() if p.ndim == 4)
    assert not torch.equal(dict(fp32.named_parameters())[conv], dict(bf16.named_parameters())[conv])  # bf16 maths ran
    assert all(p.dtype == torch.float32 for p in bf16.parameters())  # the weights stay fp32
    test_acc = (predict(bf16, bands.test.images).argmax(1) == bands.test.labels).float().mean().item()
    assert test_acc > 0.8


def test_same_seed_gives_the_same_weights(bands):
    a, b = tiny_model(), tiny_model()
    fit(a, bands.train, CONFIG)
    fit(b, bands.train, CONFIG)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_interrupted_run_resumes_to_the_same_weights(bands, tmp_path):
    reference = tiny_model()
    fit(reference, bands.train, CONFIG)

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    ckpt = tmp_path / "ckpt.pt"
    interrupted = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, bands.train, CONFIG, checkpoint=ckpt, on_epoch_end=stop_after_first)
    resumed = tiny_model(seed=99)  # a fresh process would build different initial weights
    history = fit(resumed, bands.train, CONFIG, checkpoint=ckpt)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for (name, x), y in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), name


def test_train_model_reuses_the_cache(bands, cache, monkeypatch):
    first = train_model("resnet", bands, CONFIG, TINY, cache=cache)
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("retrained a cached model"))
    second = train_model("resnet", bands, CONFIG, TINY, cache=cache)
    assert second.history == first.history
    assert torch.allclose(predict(first.model, bands.test.images), predict(second.model, bands.test.images))
    logits = second.logits(bands.test, "test")
    assert logits.shape == (len(bands.test), 3)


def test_changed_config_is_a_different_entry(bands, cache):
    a = train_model("resnet", bands, TrainConfig(epochs=1, batch_size=32, seed=0), TINY, cache=cache)
    b = train_model("resnet", bands, TrainConfig(epochs=1, batch_size=32, seed=1), TINY, cache=cache)
    assert a.key != b.key


def test_multistep_schedule_divides_at_milestones():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = train.make_scheduler(opt, TrainConfig(epochs=4, schedule="multistep", milestones=(1, 3), lr=0.1), 5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sched.step()
    assert lrs[4] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.01) and lrs[15] == pytest.approx(0.001)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_warm_schedules_rise_then_fall(schedule):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = train.make_scheduler(opt, TrainConfig(epochs=2, schedule=schedule, lr=0.1, warmup=0.25), 10)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sched.step()
    peak = max(range(20), key=lambda i: lrs[i])
    assert 0 < peak < 19 and lrs[0] < lrs[peak] and lrs[-1] < lrs[peak] / 5


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="sawtooth")
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainConfig(augment=("flip", "mixup3000"))
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet9000", 10)


def test_flip_and_crop_keep_shape_and_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (64, 3, 16, 16), dtype=torch.uint8)
    index = torch.arange(64)
    flipped = augment.flip(x, g, index, 0)
    mirrored = [torch.equal(f, o.flip(2)) for f, o in zip(flipped, x)]
    same = [torch.equal(f, o) for f, o in zip(flipped, x)]
    assert all(m or s for m, s in zip(mirrored, same)) and 10 < sum(mirrored) < 54
    cropped = augment.crop(x, g, index, 0)
    assert cropped.shape == x.shape and cropped.dtype == torch.uint8
    # a shift keeps a 14×14 core of the image somewhere inside the crop (pad is 2 px at 16 px)
    assert any(torch.equal(c[:, 2:14, 2:14], o[:, 2:14, 2:14]) for c, o in zip(cropped, x))
    assert sum(torch.equal(c, o) for c, o in zip(cropped, x)) < 20


def test_paper_augmentations_keep_shape_and_change_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (32, 3, 32, 32), dtype=torch.uint8)
    index = torch.arange(32)
    for name in ("scale_crop", "rotate", "color"):
        out = augment.AUGMENTATIONS[name](x, g, index, 0)
        assert out.shape == x.shape and out.dtype == torch.uint8, name
        assert sum(torch.equal(a, b) for a, b in zip(out, x)) < 4, name


def test_rotation_keeps_the_centre_and_blackens_corners():
    x = torch.full((64, 1, 33, 33), 200, dtype=torch.uint8)
    out = augment.rotate(x, torch.Generator().manual_seed(1), torch.arange(64), 0)
    assert (out[:, :, 16, 16] == 200).all()
    assert (out[:, :, 0, 0] < 200).float().mean() > 0.5  # most rotations move a corner out


def test_one_of_leaves_a_share_untouched_and_applies_one_each():
    x = torch.randint(0, 255, (600, 3, 8, 8), dtype=torch.uint8)
    pipeline = augment.build_pipeline(["oneof:flip+color"])
    out = pipeline(x, torch.Generator().manual_seed(0), torch.arange(600), 0)
    same = sum(torch.equal(a, b) for a, b in zip(out, x))
    assert 150 < same < 260  # about a third untouched (identity), a few flips of symmetric noise aside
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.build_pipeline(["oneof:flip+warp"])


def test_hsv_conversion_round_trips_and_shifts_hue_like_torchvision():
    from torchvision.transforms.v2.functional import adjust_hue
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 8, 8), generator=g, dtype=torch.uint8)
    f = x.float() / 255
    assert torch.allclose(augment.hsv_to_rgb(augment.rgb_to_hsv(f)), f, atol=1e-6)
    hsv = augment.rgb_to_hsv(f)
    shifted = torch.stack(((hsv[:, 0] + 0.25).remainder(1.0), hsv[:, 1], hsv[:, 2]), 1)
    ours = augment.to_uint8(augment.hsv_to_rgb(shifted)).int()
    theirs = adjust_hue(x, 0.25).int()  # torchvision's public API, one factor for the batch
    assert (ours - theirs).abs().max() <= 1
