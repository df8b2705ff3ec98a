"""Mosaic/MixUp caches obey SPEC §7, and the training dataset is deterministic and resumable."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from rtmdet.config import load_config
from rtmdet.data.cached_mix import Mosaic, MixUp, SampleCache
from rtmdet.data.loader import build_train_dataset, collate
from rtmdet.data.stages import stage_for_epoch
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.engine.distributed import ShardedEpochSampler


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synth_coco(tmp_path_factory.mktemp("synth"), n_train=12, n_val=2, seed=3,
                            size_range=(120, 200), max_objects=8)


def cfg_for(root, **over):
    base = {"data.root": str(root), "data.img_size": 128, "data.num_workers": 0}
    base.update({f"data.{k}": v for k, v in over.items()})
    return load_config("rtmdet-s", base)


def test_fifo_keeps_insertion_order():
    c = SampleCache(4, "fifo")
    rng = np.random.default_rng(0)
    for i in range(10):
        c.push({"i": i}, rng)
    assert [s["i"] for s in c.items] == [6, 7, 8, 9]


def test_random_pop_keeps_size_bound_and_pops_anywhere():
    c = SampleCache(5, "random")
    rng = np.random.default_rng(0)
    for i in range(200):
        c.push({"i": i}, rng)
        assert len(c) == min(i + 1, 5)
    kept = [s["i"] for s in c.items]
    assert kept == sorted(kept) and len(set(kept)) == 5
    assert kept != [195, 196, 197, 198, 199]           # not FIFO: old samples survive
    with pytest.raises(ValueError):
        SampleCache(3, "lifo")


def _sample(i, n_boxes=1):
    return {"img": np.full((20, 30, 3), i, np.uint8), "labels": np.zeros(n_boxes, np.int64),
            "boxes": np.tile(np.array([[2, 2, 10, 10]], np.float32), (n_boxes, 1))}


def test_mosaic_passes_through_until_cache_holds_more_than_four():
    mosaic = Mosaic(size=32, cache_size=40, pop="random")
    rng = np.random.default_rng(0)
    never = lambda: pytest.fail("cached mosaic must not load from disk")  # noqa: E731
    for i in range(4):
        s = _sample(i)
        assert mosaic(s, rng, never) is s
    out = mosaic(_sample(4), rng, never)
    assert out["img"].shape == (64, 64, 3) and len(mosaic.cache) == 5


def test_mixup_needs_two_cached_samples_and_picks_one_with_boxes():
    mixup = MixUp(size=32, cache_size=3, pop="fifo", prob=1.0)
    rng = np.random.default_rng(0)
    a = {"img": np.full((32, 32, 3), 100, np.uint8), "labels": np.zeros(0, np.int64),
         "boxes": np.zeros((0, 4), np.float32)}
    assert mixup(a, rng, None) is a
    b = dict(a, img=np.full((32, 32, 3), 200, np.uint8))
    out = mixup(b, rng, None)       # only boxless partners: blended anyway after 15 tries
    assert out["img"].shape == (32, 32, 3)
    c = {"img": np.full((32, 32, 3), 50, np.uint8), "labels": np.array([1]),
         "boxes": np.array([[0, 0, 8, 8]], np.float32)}
    out = mixup(c, rng, None)
    assert len(out["boxes"]) >= 1 and [len(s["boxes"]) for s in mixup.cache.items] == [0, 0, 1]


def test_mixup_prob_zero_never_mixes():
    mixup = MixUp(size=32, cache_size=5, pop="random", prob=0.0)
    rng = np.random.default_rng(0)
    for i in range(5):
        s = _sample(i)
        s["img"] = np.full((32, 32, 3), i, np.uint8)
        assert mixup(s, rng, None) is s


class CountingSource:
    def __init__(self, src):
        self.src, self.loads = src, 0

    def __getattr__(self, name):
        return getattr(self.src, name)

    def __len__(self):
        return len(self.src)

    def load(self, i):
        self.loads += 1
        return self.src.load(i)


@pytest.mark.parametrize("cached, per_item", [(True, (1, 2)), (False, (5, 7))])
def test_cache_reads_one_image_per_sample(root, cached, per_item):
    ds = build_train_dataset(cfg_for(root, cached=cached))
    ds.source = CountingSource(ds.source)
    for i in range(10):
        ds[i % len(ds)]
    loads = ds.source.loads / 10
    assert per_item[0] <= loads <= per_item[1]    # (crop redraws may add a few)
    if cached:
        assert all(s["img"].shape == (128, 128, 3) for s in ds.mixup.cache.items)
        assert any(s["img"].shape != (128, 128, 3) for s in ds.mosaic.cache.items)


def test_items_contract(root):
    ds = build_train_dataset(cfg_for(root, with_masks=True))
    items = [ds[i] for i in range(8)]
    images, targets = collate(items)
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 128, 128)
    # NHWC memory (no transpose copy in the workers), same pixels as the classic NCHW stack.
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(images, torch.stack([it["img"].contiguous() for it in items]))
    for t in targets:
        b, m = t["boxes"], t["masks"]
        assert b.dtype == torch.float32 and t["labels"].dtype == torch.int64
        assert m.dtype == torch.bool and m.shape == (len(b), 128, 128)
        assert len(b) > 0 and (b[:, 2:] > b[:, :2]).all() and b.min() >= 0 and b.max() <= 128
        assert t["labels"].min() >= 0 and t["labels"].max() < 8
        # Mask pixels lie inside their box. COCO boxes come from the RLE of the polygon, which
        # differs from the polygon's hull by < 1 px; Mosaic + resize scale that by up to 2.
        for box, mask in zip(b, m):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            if len(xs):
                assert xs.min() >= box[0] - 2 and ys.min() >= box[1] - 2
                assert xs.max() <= box[2] + 2 and ys.max() <= box[3] + 2


def _run(ds, indices):
    return [ds[i] for i in indices]


def _equal(a, b):
    return all(torch.equal(x["img"], y["img"]) and torch.equal(x["boxes"], y["boxes"])
               and torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))


def test_resume_mid_epoch_is_bit_identical(root):
    cfg = cfg_for(root)
    sampler = ShardedEpochSampler(12, seed=cfg.seed)
    full = build_train_dataset(cfg)
    full.set_epoch(1)
    sampler.set_epoch(1)
    order = list(sampler)
    ref = _run(full, order)

    part = build_train_dataset(cfg)
    part.set_epoch(1)
    first = _run(part, order[:7])
    buf = io.BytesIO()
    torch.save(part.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    resumed = build_train_dataset(cfg)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)                               # trainer calls it again: must be a no-op
    sampler.set_epoch(1, start=7)
    rest = _run(resumed, list(sampler))
    assert _equal(first + rest, ref)
    other = build_train_dataset(cfg_for(root))
    other.set_epoch(2)
    assert not _equal(_run(other, order), ref)         # a different epoch draws differently


def test_stage2_has_no_mosaic_or_mixup(root):
    ds = build_train_dataset(cfg_for(root), stage=2)
    ds.source = CountingSource(ds.source)
    for i in range(6):
        item = ds[i]
        assert item["img"].shape == (3, 128, 128)
    assert ds.source.loads <= 8 and len(ds.mosaic.cache) == 0 and len(ds.mixup.cache) == 0
    off = cfg_for(root, stage2=False)         # the stage-2 ablation: stage 1 to the last epoch
    assert [stage_for_epoch(off, e) for e in range(off.train.epochs)] == [1] * off.train.epochs
    on = cfg_for(root)
    last = [stage_for_epoch(on, e) for e in range(on.train.epochs)][-on.train.stage2_epochs - 1:]
    assert last == [1] + [2] * on.train.stage2_epochs
