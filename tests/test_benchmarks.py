"""Smoke tests: each benchmark's --quick mode runs from its file, prints a table and appends it."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script: str, tmp_path, header: str) -> str:
  results = tmp_path / "RESULTS.md"
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", script), "--quick", "--results", str(results)],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert header in result.stdout
  written = results.read_text()
  assert written.startswith("# Benchmark results") and header in written
  assert f"- command: `python benchmarks/{script} --quick" in written
  return result.stdout


def test_train_step_benchmark(tmp_path):
  output = _run("train_step.py", tmp_path, "| size | batch | maskae images/s | Keras images/s |")
  math_rows = [line for line in output.splitlines() if line.startswith("|   32 |         75651 |")]
  assert math_rows and math_rows[0].rstrip().endswith("| yes            |"), output


def test_inference_benchmark(tmp_path):
  _run("inference.py", tmp_path, "| model            | params | size | batch | images/s |")


def test_scaling_benchmark(tmp_path):
  output = _run("scaling.py", tmp_path, "| devices | global batch | per device | images/s |")
  assert "|       2 |           32 |         16 |" in output


def test_profile_step_lists_the_costliest_ops(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "profile_step.py"), "--size", "32", "--steps",
       "1", "--top", "5", "--out_dir", str(tmp_path)],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[1].split() == ["ms/step", "share", "op", "result", "source"]
  assert len(lines) == 7 and "conv" in result.stdout
