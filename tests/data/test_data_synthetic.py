"""The generators write real COCO / DOTA formats, our loaders round-trip them, bad input is handled."""
from __future__ import annotations

import contextlib
import io
import json
import logging

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from rtmdet.config import load_config
from rtmdet.data.bad_input import BadInput, DataError
from rtmdet.data.coco import CocoDataset
from rtmdet.data.dota import DOTA_CLASSES, DotaDataset, parse_dota_labels
from rtmdet.data.loader import build_val_dataset, collate
from rtmdet.data.synthetic import (COCO_CATEGORIES, format_dota_labels, synth_dota_image,
                                   uncompressed_rle, write_synth_coco)
from rtmdet.data.transforms import rasterize
from rtmdet.data.preprocess import resize_keep_ratio


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synth_coco(tmp_path_factory.mktemp("coco"), n_train=10, n_val=3, seed=7,
                            size_range=(120, 220), max_objects=10)


def load_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_generator_is_deterministic_per_seed(tmp_path, root):
    again = write_synth_coco(tmp_path / "a", n_train=10, n_val=3, seed=7, size_range=(120, 220),
                             max_objects=10)
    for rel in ("annotations/instances_train.json", "images/train/000000000001.jpg"):
        assert (again / rel).read_bytes() == (root / rel).read_bytes()
    other = write_synth_coco(tmp_path / "b", n_train=2, n_val=0, seed=8, size_range=(120, 220))
    assert ((other / "images/train/000000000001.jpg").read_bytes()
            != (root / "images/train/000000000001.jpg").read_bytes())


def test_coco_json_is_valid_coco(root):
    coco = load_coco(root / "annotations/instances_train.json")
    assert sorted(coco.getCatIds()) == [c for c, _ in COCO_CATEGORIES]
    assert len(coco.imgs) == 10 and len(coco.anns) > 20
    for ann in coco.anns.values():
        img = coco.imgs[ann["image_id"]]
        m = coco.annToMask(ann)                       # polygons and RLE both decode
        assert m.shape == (img["height"], img["width"])
        assert ann["area"] == pytest.approx(m.sum())
        ys, xs = np.nonzero(m)
        x, y, w, h = ann["bbox"]
        assert (x, y, x + w, y + h) == pytest.approx((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), abs=0.01)
    for info in coco.imgs.values():
        im = cv2.imread(str(root / "images/train" / info["file_name"]))
        assert im.shape[:2] == (info["height"], info["width"])
    sizes = [max(a["bbox"][2:]) for a in coco.anns.values()]
    assert min(sizes) < 16 and max(sizes) > 60


def test_uncompressed_rle_matches_pycocotools():
    m = np.random.default_rng(0).random((13, 17)) > 0.6
    m[0, 0] = True
    for mask in (m, ~m):
        rle = mask_utils.frPyObjects({"size": [13, 17], "counts": uncompressed_rle(mask)}, 13, 17)
        np.testing.assert_array_equal(mask_utils.decode(rle), mask)


def test_loader_round_trips_the_json(root):
    ann = root / "annotations/instances_train.json"
    ds = CocoDataset(ann, root / "images/train", train=False, with_masks=True)
    coco = load_coco(ann)
    assert [ds.cat_ids[i] for i in range(len(ds.cat_ids))] == [c for c, _ in COCO_CATEGORIES]
    assert ds.ann_file == ann and ds.coco.getImgIds() == coco.getImgIds()
    for i in range(len(ds)):
        s = ds.load(i)
        anns = [a for a in coco.imgToAnns[s["image_id"]] if not a["iscrowd"]]
        ref = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                         a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32).reshape(-1, 4)
        np.testing.assert_allclose(s["boxes"], ref, atol=1e-4)
        assert [ds.cat_ids[lab] for lab in s["labels"]] == [a["category_id"] for a in anns]
        h, w = s["img"].shape[:2]
        ours = rasterize(s["masks"], h, w)
        for m, a in zip(ours, anns):
            np.testing.assert_array_equal(m, coco.annToMask(a).astype(bool))


def test_training_filters_empty_and_small_images(root):
    ann = root / "annotations/instances_train.json"
    coco = load_coco(ann)
    with_boxes = {a["image_id"] for a in coco.anns.values() if not a["iscrowd"]}
    ds = CocoDataset(ann, root / "images/train", train=True)
    assert set(ds.ids) == with_boxes
    assert len(CocoDataset(ann, root / "images/train", train=True, min_img_size=10_000)) == 0


def _bad_json(root, tmp_path):
    data = json.loads((root / "annotations/instances_train.json").read_text())
    img = data["images"][0]
    extra = [dict(bbox=[5, 5, -3, 4], category_id=1), dict(bbox=[5, 5, 4, 4], category_id=999),
             dict(bbox=[img["width"] + 10, 5, 4, 4], category_id=1), dict(bbox=[1, 2, 0, 0], category_id=1)]
    for k, e in enumerate(extra):
        data["annotations"].append(dict(e, id=10**8 + k, image_id=img["id"], iscrowd=0, area=1,
                                        segmentation=[]))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_bad_annotations_are_counted_skips_or_errors(root, tmp_path, caplog):
    path = _bad_json(root, tmp_path)
    bad = BadInput("skip")
    with caplog.at_level(logging.WARNING, logger="rtmdet.data"):
        good = CocoDataset(root / "annotations/instances_train.json", root / "images/train")
        ds = CocoDataset(path, root / "images/train", bad=bad)
    assert dict(bad.counts) == {"zero, negative or sub-pixel box size": 2,
                                "unknown category id": 1, "box outside the image": 1}
    assert str(path) in caplog.text
    assert sum(len(r["labels"]) for r in ds.records) == sum(len(r["labels"]) for r in good.records)
    with pytest.raises(DataError, match="bad.json: image .* annotation"):
        CocoDataset(path, root / "images/train", bad=BadInput("error"))


def test_missing_and_corrupt_images(root, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    coco = load_coco(root / "annotations/instances_train.json")
    names = [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)]
    (imgs / names[1]).write_bytes(b"not a jpeg")
    for n in names[2:]:
        (imgs / n).write_bytes((root / "images/train" / n).read_bytes())
    bad = BadInput("skip")
    ds = CocoDataset(root / "annotations/instances_train.json", imgs, train=False, bad=bad)
    assert ds.load(0) is None and ds.load(1) is None and ds.load(2) is not None
    assert dict(bad.counts) == {"missing image file": 1, "unreadable or corrupt image": 1}
    strict = CocoDataset(root / "annotations/instances_train.json", imgs, train=False,
                         bad=BadInput("error"))
    with pytest.raises(DataError, match=names[0]):
        strict.load(0)
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        CocoDataset(tmp_path / "nope.json", imgs)


def test_val_dataset_is_keep_ratio_resize_and_pad(root):
    cfg = load_config("rtmdet-s", {"data.root": str(root), "data.img_size": 160})
    ds = build_val_dataset(cfg)
    images, targets = collate([ds[0], ds[1]])
    assert images.shape == (2, 3, 160, 160) and images.dtype.is_floating_point is False
    for img, t in zip(images, targets):
        info = ds.source.coco.imgs[t["image_id"]]
        raw = cv2.imread(str(root / "images/val" / info["file_name"]))
        ref, scale = resize_keep_ratio(raw, 160)
        h, w = ref.shape[:2]
        assert t["scale"] == scale and t["ori_shape"] == raw.shape[:2]
        np.testing.assert_array_equal(img.permute(1, 2, 0).numpy()[:h, :w], ref)
        assert (img[:, h:, :] == 114).all() and (img[:, :, w:] == 114).all()


def test_dota_labels_round_trip_and_bad_lines(tmp_path):
    img, objs = synth_dota_image(np.random.default_rng(0), (400, 500), (5, 12))
    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt").mkdir()
    cv2.imwrite(str(tmp_path / "images/P1.png"), img)
    text = format_dota_labels(objs) + "1 2 3 4 5 6 plane 0\n1 2 3 4 5 6 7 8 unicorn 0\n"
    (tmp_path / "labelTxt/P1.txt").write_text(text)
    bad = BadInput("skip")
    quads, labels, diff = parse_dota_labels(tmp_path / "labelTxt/P1.txt", bad=bad)
    assert dict(bad.counts) == {"malformed DOTA line": 1, "unknown class": 1}
    np.testing.assert_allclose(quads, np.array([q for q, _, _ in objs]), atol=0.051)
    assert [DOTA_CLASSES[i] for i in labels] == [n for _, n, _ in objs]
    n_lines = 2 + len(objs) + 1
    with pytest.raises(DataError, match=rf"P1.txt:{n_lines}: malformed DOTA line"):
        parse_dota_labels(tmp_path / "labelTxt/P1.txt", bad=BadInput("error"))
    ds = DotaDataset(tmp_path / "images", tmp_path / "labelTxt")
    s = ds.load(0)
    assert s["image_id"] == "P1" and len(s["boxes"]) == len(objs)
