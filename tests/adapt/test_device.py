"""The device is chosen once (`compute.device`) and every torch model of the stage follows it."""

import numpy as np
import pytest
import torch

from darkembed.adapt.aligners import make_aligner
from darkembed.config import load_config
from darkembed.evaluate.classifiers import DNNClassifier
from darkembed.torchutil import pick_device, set_default_device


@pytest.fixture
def restore_device():
    old = set_default_device("auto")
    yield
    set_default_device(old)


def test_the_configured_default_reaches_every_model(restore_device, rotated):
    yc, yp, _ = rotated
    set_default_device("cpu")
    assert pick_device(None) == torch.device("cpu")
    clf = DNNClassifier(hidden=[8], epochs=1)
    al = make_aligner("nonlinear", epochs=1, width=8).fit(yc[:50], yp[:50])
    assert clf.device.type == "cpu" and al.device.type == "cpu"
    assert next(al.model.parameters()).device.type == "cpu"
    assert pick_device("cpu") == torch.device("cpu")  # an explicit device wins


def test_auto_follows_the_machine(restore_device):
    set_default_device("auto")
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(restore_device):
    set_default_device("cuda")
    with pytest.raises(RuntimeError, match=r"compute\.device.*no CUDA device"):
        DNNClassifier()


def test_bad_device_names_are_refused(restore_device):
    with pytest.raises(RuntimeError):
        set_default_device("gpu0")
    assert load_config(overrides={"compute": {"device": "cuda:1"}}).compute.device == "cuda:1"


def test_a_model_trained_on_one_device_loads_on_the_default(restore_device, rotated):
    yc, yp, _ = rotated
    tensors, meta = make_aligner("nonlinear", epochs=1, width=8, device="cpu").fit(yc[:50], yp[:50]).state()
    set_default_device("cpu")
    from darkembed.adapt.aligners import aligner_from_state

    out = aligner_from_state(tensors, meta).transform(yc[:3])
    assert out.shape == (3, 16) and np.isfinite(out).all()


def test_tsne_maps_are_drawn_where_they_are_read():
    from darkembed.stages.adapt import draw_tsne

    cfg = load_config()
    assert cfg.report.tsne == "last"
    assert draw_tsne(cfg, last_day=True) and not draw_tsne(cfg, last_day=False)
    always = load_config(overrides={"report": {"tsne": "always"}})
    never = load_config(overrides={"report": {"tsne": "never"}})
    assert draw_tsne(always, last_day=False) and not draw_tsne(never, last_day=True)
