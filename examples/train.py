"""A tiny PyTorch CPU training job that checkpoints, survives preemption and resumes: gpuarb's local example.

It fits a linear regression on synthetic, seeded data. Everything it needs to resume exactly where it left off
(model, optimizer, step, RNG state) goes into one checkpoint file, written atomically (temp file + os.replace),
so a kill at any moment leaves either the previous checkpoint or the new one, never a torn file.

Files in the checkpoint directory ($GPUARB_CHECKPOINT_DIR, else --checkpoint-dir, else ./checkpoints):
  checkpoint.pt    model + optimizer + step + torch RNG state (the resume point)
  checkpoint.json  {"step": N, "attempt": A}: the step of checkpoint.pt, for people and tests
  steps.log        one line per completed step, "step <n> attempt <a> pid <p>", appended before the checkpoint
                   that covers it, so steps done twice are exactly those after the checkpoint resumed from
  train.pid        "<pid> <attempt>" of the running process (to kill it in tests)
  result.json      final step, loss and weights, written when all steps are done

Work done is reported to gpuarb through $GPUARB_METRICS (a JSON-lines file in the checkpoint directory): after each
checkpoint one line {"tokens": N} with the samples trained since the previous checkpoint (this toy model's unit of
work), so steps redone after a resume are counted once. `gpuarb report spend` turns them into USD per million tokens.

Runs without gpuarb too: `python examples/train.py --steps 100` checkpoints into ./checkpoints.
SIGTERM (graceful preemption, `ray job stop`) checkpoints after the current step and exits 143 (128 + SIGTERM), so
the job reads as stopped, not finished. SIGKILL just dies; the next attempt resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

EXIT_TERMINATED = 128 + signal.SIGTERM  # the shell convention for "killed by SIGTERM"
FEATURES = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the checkpoint cadence defaults to gpuarb's GPUARB_CHECKPOINT_INTERVAL_SECONDS."""
    env_interval = os.environ.get("GPUARB_CHECKPOINT_INTERVAL_SECONDS")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="total optimizer steps (default 200)")
    parser.add_argument("--step-seconds", type=float, default=0.0, help="sleep per step, to slow it down for tests")
    parser.add_argument("--checkpoint-every", type=int, default=20, help="checkpoint every N steps (0: off)")
    parser.add_argument("--checkpoint-seconds", type=float, default=float(env_interval) if env_interval else 0.0,
                        help="also checkpoint when this many seconds passed since the last one "
                        "(default: $GPUARB_CHECKPOINT_INTERVAL_SECONDS, else off)")
    parser.add_argument("--checkpoint-dir", default=os.environ.get("GPUARB_CHECKPOINT_DIR", "checkpoints"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true",
                        help="ignore an existing checkpoint and the step log, and start at step 0")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any], attempt: str) -> None:
    """checkpoint.pt (the resume point), then checkpoint.json naming its step."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    _atomic_write_bytes(ckpt_dir / "checkpoint.pt", buffer.getvalue())
    meta = {"step": state["step"], "attempt": attempt, "saved_at": time.time()}
    _atomic_write_bytes(ckpt_dir / "checkpoint.json", json.dumps(meta).encode())


def load_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint, or None when there is none."""
    import torch

    path = ckpt_dir / "checkpoint.pt"
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def report_work(samples: int) -> None:
    """Append the work since the last report to $GPUARB_METRICS (if gpuarb set it): {"tokens": samples}."""
    path = os.environ.get("GPUARB_METRICS")
    if not path or samples <= 0:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"tokens": samples}) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Train, checkpointing on schedule and on SIGTERM; returns the process exit code."""
    args = parse_args(argv)
    attempt = os.environ.get("GPUARB_ATTEMPT", "1")
    ckpt_dir = Path(args.checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(ckpt_dir / "train.pid", f"{os.getpid()} {attempt}\n".encode())

    terminate = {"requested": False}

    def on_sigterm(signum: int, frame: object) -> None:
        terminate["requested"] = True

    signal.signal(signal.SIGTERM, on_sigterm)

    import torch

    torch.set_num_threads(1)  # deterministic and polite on a shared machine
    data_gen = torch.Generator().manual_seed(args.seed)
    true_w = torch.randn(FEATURES, 1, generator=data_gen)
    inputs = torch.randn(4096, FEATURES, generator=data_gen)
    targets = inputs @ true_w + 0.01 * torch.randn(4096, 1, generator=data_gen)

    model = torch.nn.Linear(FEATURES, 1)
    with torch.no_grad():  # seeded init, independent of torch's global RNG
        init_gen = torch.Generator().manual_seed(args.seed + 1)
        model.weight.copy_(torch.randn(1, FEATURES, generator=init_gen) * 0.1)
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    batch_gen = torch.Generator().manual_seed(args.seed + 2)

    step, loss = 0, float("nan")
    checkpoint = None if args.fresh else load_checkpoint(ckpt_dir)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        batch_gen.set_state(checkpoint["batch_rng"])
        step = int(checkpoint["step"])
        loss = float(checkpoint.get("loss", float("nan")))
        print(f"resumed from step {step} (checkpoint of attempt {checkpoint.get('attempt', '?')}) "
              f"in {ckpt_dir}", flush=True)
        if step >= args.steps:
            print(f"nothing to do: the checkpoint is at step {step} of {args.steps} "
                  f"(delete {ckpt_dir} or pass --fresh to start over)", flush=True)
    elif os.environ.get("GPUARB_RESUME") == "1":
        print(f"GPUARB_RESUME=1 but no checkpoint in {ckpt_dir}: starting at step 0", flush=True)
    else:
        print(f"starting at step 0; checkpoints in {ckpt_dir}", flush=True)

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "batch_rng": batch_gen.get_state(), "step": step, "loss": loss, "attempt": attempt}

    reported = step  # work up to the checkpoint resumed from was reported by the attempt that saved it
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if args.fresh else 0)
    steps_log = os.open(ckpt_dir / "steps.log", flags, 0o644)
    last_save = time.monotonic()
    try:
        while step < args.steps:
            index = torch.randint(0, inputs.shape[0], (args.batch_size,), generator=batch_gen)
            loss_t = torch.nn.functional.mse_loss(model(inputs[index]), targets[index])
            optimizer.zero_grad()
            loss_t.backward()
            optimizer.step()
            loss = float(loss_t.detach())
            if args.step_seconds > 0:
                time.sleep(args.step_seconds)
            step += 1
            os.write(steps_log, f"step {step} attempt {attempt} pid {os.getpid()}\n".encode())
            if step % 10 == 0 or step == args.steps:
                print(f"step {step}/{args.steps} loss {loss:.6f}", flush=True)
            due = (args.checkpoint_every > 0 and step % args.checkpoint_every == 0) or (
                args.checkpoint_seconds > 0 and time.monotonic() - last_save >= args.checkpoint_seconds)
            if due or terminate["requested"]:
                save_checkpoint(ckpt_dir, state(), attempt)
                report_work((step - reported) * args.batch_size)
                reported = step
                last_save = time.monotonic()
            if terminate["requested"] and step < args.steps:
                print(f"SIGTERM: checkpointed at step {step}; exiting {EXIT_TERMINATED}", flush=True)
                return EXIT_TERMINATED
    finally:
        os.close(steps_log)

    save_checkpoint(ckpt_dir, state(), attempt)
    report_work((step - reported) * args.batch_size)
    result = {"step": step, "loss": loss, "weight": model.weight.detach().flatten().tolist(),
              "bias": float(model.bias.detach()[0])}
    _atomic_write_bytes(ckpt_dir / "result.json", json.dumps(result).encode())
    print(f"done: {step} steps, final loss {loss:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
