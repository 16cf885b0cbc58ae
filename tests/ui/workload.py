"""What the UI tests look at, logged by the stock MLflow 3.x client as a user's script would.

Run as a separate process (`log_workload(url)`), like the quickstart a user runs: the
client's global state (active run, experiment) never leaks into the tests. It logs:
- an experiment (with a tag) holding a parent run with two nested child runs;
- a run "train" with params and tags (not in key order: the UI shows them in the order
  logged), a 500-step metric `loss` and a one-point `accuracy`, a
  pandas dataset input ("toy", context training), a text file, an image, and an sklearn
  model logged with `mlflow.sklearn.log_model` (a logged model with its files);
- that model registered as version 1 of a registered model with the alias "champion";
- a prompt (MLflow 3's prompt registry);
- a trace of a traced function (`@mlflow.trace`, a child span) with a feedback assessment.
Prints one JSON object with the ids and names; the client also prints the "View run" link
a user clicks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

SCRIPT = r"""
import json, sys, uuid
import mlflow, mlflow.data, mlflow.sklearn
import pandas as pd
from PIL import Image
from sklearn.linear_model import LinearRegression

mlflow.set_tracking_uri(sys.argv[1])
uid = uuid.uuid4().hex[:8]
experiment = mlflow.set_experiment(f"ui-{uid}")
mlflow.set_experiment_tag("team", "vision")
frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]})
dataset = mlflow.data.from_pandas(frame, name="toy", targets="y")
with mlflow.start_run(run_name="sweep-parent") as parent:
    mlflow.log_param("kind", "sweep")
    for i in range(2):
        with mlflow.start_run(run_name=f"sweep-child-{i}", nested=True):
            mlflow.log_param("alpha", 0.1 * (i + 1))
            mlflow.log_metric("score", 0.5 + i * 0.1)
with mlflow.start_run(run_name="train") as run:
    mlflow.log_params({"solver": "lbfgs", "alpha": "0.5", "l1_ratio": "0.125"})
    mlflow.set_tags({"stage": "dev", "owner": "ana"})
    mlflow.log_input(dataset, context="training")
    for step in range(500):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metric("accuracy", 0.93)
    mlflow.log_text("hello from the run\n", "notes/readme.txt")
    mlflow.log_image(Image.new("RGB", (64, 48), (200, 30, 30)), "plots/red.png")
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    info = mlflow.sklearn.log_model(model, name="model", input_example=frame[["x"]].head(2))
registered = f"ui-model-{uid}"
version = mlflow.register_model(info.model_uri, registered)
mlflow.MlflowClient().set_registered_model_alias(registered, "champion", version.version)
prompt = mlflow.genai.register_prompt(name=f"ui-prompt-{uid}", template="Summarize {{text}}")

@mlflow.trace(name="answer-question")
def answer_question(question):
    with mlflow.start_span("lookup", span_type="RETRIEVER") as span:
        span.set_inputs({"query": question})
        span.set_outputs(["tether keeps traces"])
    return "Tether keeps your traces."

answer_question("Where do traces go?")
mlflow.flush_trace_async_logging()
trace_id = mlflow.get_last_active_trace_id()
mlflow.log_feedback(trace_id=trace_id, name="helpfulness", value=True, rationale="clear")
print(json.dumps({
    "experiment_id": experiment.experiment_id,
    "experiment_name": experiment.name,
    "run_id": run.info.run_id,
    "parent_id": parent.info.run_id,
    "model_id": info.model_id,
    "registered_model": registered,
    "version": version.version,
    "prompt": prompt.name,
    "trace_id": trace_id,
}))
"""


@dataclass(frozen=True)
class Workload:
    experiment_id: str
    experiment_name: str
    run_id: str
    parent_id: str
    model_id: str
    registered_model: str
    version: str
    prompt: str
    trace_id: str
    view_run_url: str  # the "View run train at: <url>" link the client printed


def log_workload(tracking_uri: str) -> Workload:
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, tracking_uri],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    last = done.stdout.strip().splitlines()[-1]
    printed = re.search(r"View run train at: (\S+)", done.stdout + done.stderr)
    assert printed is not None, done.stdout[-3000:] + done.stderr[-3000:]
    return Workload(**json.loads(last), view_run_url=printed.group(1))
