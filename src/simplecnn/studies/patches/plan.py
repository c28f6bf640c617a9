"""The patch chapter's plan: every model it trains or runs with its parameters, at the
real width, resolution and batch (``core.plan``), for the runner's expected minutes and the
fake-tensor proof of the gpu and paper profiles."""

from __future__ import annotations

from simplecnn.core.data import split_sizes
from simplecnn.core.plan import Loop
from simplecnn.core.recipes import recipe
from simplecnn.studies.patches.grid import Grid
from simplecnn.studies.patches.methods import bagnet_object_mask

ENCODER = "simplecnn.studies.patches.tile2vec:build_encoder"


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """BagNet-q for every q (and at ``heatmap_q`` once more, trained on object windows), the
    full-image CNN, tile2vec's encoder per q, the memory tests' BagNet (inference on a large
    image, one training step per size) and the Grad-CAM detector's passes over the CNN."""
    n = params["train_size"] or split_sizes(params["dataset"], params["val_fraction"])["train"]
    px, b, loops = params["resolution"], params["bagnet"], []
    bag = {"width": b["width"], "blocks": list(b["blocks"])}
    trains_bagnet = "bagnet" in params["methods"] or params["probe"]
    for q in params["qs"]:
        if trains_bagnet:
            loops += [Loop(f"BagNet-{q}", "bagnet", {"q": q, **bag}, px, b["batch_size"], n * b["epochs"]),
                      Loop(f"BagNet-{q}, window logits", "bagnet", {"q": q, **bag}, px, 256)]
        if "tile2vec" in params["methods"]:
            t = params["tile2vec"]
            loops.append(Loop(f"tile2vec encoder, q = {q}", "tile2vec", {"channels": t["channels"], "dim": t["dim"]},
                              q, 3 * t["batch_size"], 3 * t["batch_size"] * t["steps"], builder=ENCODER))
    if params["background_refit"] and "bagnet" in params["methods"]:
        keep = bagnet_object_mask(Grid(params["heatmap_q"], params["stride"], px), params["background_share"])
        loops.append(Loop(f"BagNet-{params['heatmap_q']} trained on object windows", "bagnet_object",
                          {"q": params["heatmap_q"], **bag, "keep": keep.tolist()}, px, b["batch_size"],
                          n * b["epochs"]))
    ceiling = recipe(params["ceiling_recipe"], params["dataset"], like=params.get("like"), resolution=px)
    loops += [Loop("full-image CNN", ceiling.model, ceiling.model_kwargs, px, ceiling.config.batch_size,
                   n * params["ceiling_epochs"], ema=bool(ceiling.config.ema)),
              Loop("full-image CNN, Grad-CAM detector", ceiling.model, ceiling.model_kwargs, px, 128)]
    memory = {"q": params["memory_q"], **bag}
    loops.append(Loop(f"BagNet-{params['memory_q']} on a {params['memory_size']}-px image", "bagnet", memory,
                      params["memory_size"], 1))
    loops += [Loop(f"BagNet-{params['memory_q']}, one training step at {size} px", "bagnet", memory, size, 1)
              for size in params["train_memory_sizes"]]
    return loops
