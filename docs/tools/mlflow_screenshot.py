"""Screenshot of the MLflow compare view of one ablation's (variant, seed) runs
(``docs/mlflow_compare.png``), taken with headless Chromium over the DevTools protocol.

    mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5055 &
    python docs/tools/mlflow_screenshot.py kernel_size docs/mlflow_compare.png \\
        --ui http://127.0.0.1:5055 [--store sqlite:///mlflow.db]

Chromium comes from the distribution (``apt-get install chromium``); the DevTools client is
aiohttp, which MLflow already depends on. The page is driven as a user would: the assistant
panel closed, "Show diff only" on for parameters and tags (the kernel sizes remain, not the
~120 identical ones), the metrics (AP, latency, loss) left whole.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import time
import urllib.request
from pathlib import Path

CLICKS = """(() => {
  const q = s => document.querySelector(s);
  q('button[aria-label="Close"]')?.click();
  q('[aria-label="Parameters - Show diff only"]')?.click();
  q('[aria-label="Tags - Show diff only"]')?.click();
  return !!q('[aria-label="Parameters - Show diff only"]');
})()"""
# Bottom of the metrics table: the screenshot stops above the artifacts section.
BOTTOM = """(() => {
  const h = Array.from(document.querySelectorAll('[role=button]'))
    .find(e => e.textContent.trim() === 'Artifacts');
  return h ? h.getBoundingClientRect().top + window.scrollY - 8 : document.body.scrollHeight;
})()"""


def compare_url(ui: str, store: str, ablation: str) -> str:
    """The compare page of the ablation's current (variant, seed) runs, children of its parent,
    in the training-runs view."""
    import mlflow
    c = mlflow.tracking.MlflowClient(store)
    exp = c.get_experiment_by_name(ablation)
    if exp is None:
        raise SystemExit(f"{store}: no experiment {ablation!r}")
    runs = [r for r in c.search_runs([exp.experiment_id], "tags.job = 'train'")
            if "mlflow.parentRunId" in r.data.tags]
    runs.sort(key=lambda r: r.info.run_name)
    ids = json.dumps([r.info.run_id for r in runs], separators=(",", ":"))
    return (f"{ui.rstrip('/')}/#/compare-runs?runs={ids}&experiments="
            f"{json.dumps([exp.experiment_id])}&workflowType=machine_learning")


async def shoot(url: str, out: Path, width: int, height: int, port: int, settle: float) -> None:
    import aiohttp
    proc = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                             "--hide-scrollbars", f"--remote-debugging-port={port}",
                             f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise SystemExit("chromium did not start its DevTools endpoint")
        page = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
        async with aiohttp.ClientSession() as s, s.ws_connect(page, max_msg_size=0) as ws:
            ids = iter(range(1, 10**6))

            async def call(method: str, **params):
                n = next(ids)
                await ws.send_json({"id": n, "method": method, "params": params})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == n:
                        return msg.get("result", {})

            async def js(expr: str):
                r = await call("Runtime.evaluate", expression=expr, returnByValue=True)
                return r.get("result", {}).get("value")

            await call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=url)
            await asyncio.sleep(settle)                  # the SPA loads runs and metrics
            if not await js(CLICKS):
                raise SystemExit(f"{url}: not the compare page (no parameter table)")
            await asyncio.sleep(2)
            bottom = min(height, int(await js(BOTTOM)))
            shot = await call("Page.captureScreenshot", format="png",
                              clip={"x": 0, "y": 0, "width": width, "height": bottom, "scale": 1})
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        proc.terminate()
        proc.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ablation", help="experiment name, e.g. kernel_size")
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--ui", default="http://127.0.0.1:5000", help="running `mlflow ui`")
    p.add_argument("--store", default="sqlite:///mlflow.db", help="its backend store")
    p.add_argument("--size", default="1500x2100", help="window WIDTHxHEIGHT")
    p.add_argument("--port", type=int, default=9223, help="Chromium DevTools port")
    p.add_argument("--settle", type=float, default=15.0, help="seconds to let the page load")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    url = compare_url(args.ui, args.store, args.ablation)
    asyncio.run(shoot(url, args.out, width, height, args.port, args.settle))
    print(f"wrote {args.out} ({url})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
