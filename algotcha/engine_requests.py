"""Validated request models -> the engine's requests, and the engine's complaints -> field errors.

Shared by the queue's submit route, the workers re-reading a stored job, and the CLI's files:
none of them is HTTP, so this module knows nothing of it (the models say the shapes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import engine
from algotcha import models
from algotcha.errors import FieldError, ValidationError
from algotcha.vocabulary import NotifyChannel

# camelCase payload field -> engine.BacktestRequest field, in docs/api.md's order
PAYLOAD_FIELDS = {
    info.alias or name: name for name, info in models.RunBacktestDto.model_fields.items()
}
_CAMEL = {snake: camel for camel, snake in PAYLOAD_FIELDS.items()}
# camelCase objective -> engine objective (a metric key)
SWEEP_OBJECTIVES = {models.camel(name): name for name in engine.grid.OBJECTIVES}
_RULE_PAYLOAD_FIELDS = ("longEntry", "longExit", "shortEntry", "shortExit")


def backtest_request(
    payload: models.RunBacktestDto, path: str = "payload"
) -> engine.BacktestRequest:
    """The engine's request of a validated payload: its rules parsed, its ranges checked."""
    try:
        return engine.BacktestRequest(**{name: getattr(payload, name) for name in _CAMEL})
    except engine.EngineError as exc:
        raise engine_error(exc, path) from None


def parse_payload(obj: Any, path: str = "payload") -> engine.BacktestRequest:
    """A RunBacktestDto as decoded JSON (a stored job's, a file's) -> BacktestRequest."""
    return backtest_request(models.validate(models.RunBacktestDto, obj, path), path)


def engine_error(exc: engine.EngineError, path: str = "payload") -> ValidationError:
    """An engine complaint about the user's input, as a 422 naming the payload field."""
    field = f"{path}.{_CAMEL.get(exc.field, exc.field)}" if exc.field else path
    message = str(exc)
    return ValidationError(f"{field}: {message}", errors=[FieldError(field, message)])


def payload_dict(request: engine.BacktestRequest) -> dict[str, Any]:
    """The canonical RunBacktestDto of a request, as stored with the job."""
    out: dict[str, Any] = {}
    for camel, snake in PAYLOAD_FIELDS.items():
        value = getattr(request, snake)
        out[camel] = models.iso(value) if isinstance(value, datetime) else value
    return out


@dataclass(frozen=True)
class SweepSubmission:
    """A sweep ready to queue: its JSON as validated (what the job stores and its chunks
    re-read), the engine's request with the payload checked against the data, its size."""

    document: dict[str, Any]
    request: engine.SweepRequest
    combinations: int
    unit_bars: int  # bars each combination runs over (an estimate from the data's metadata)


@dataclass(frozen=True)
class WalkForwardSubmission:
    """A walk-forward ready to plan (plan_walkforward) and queue, as SweepSubmission."""

    document: dict[str, Any]
    request: engine.WalkForwardRequest
    combinations: int


@dataclass(frozen=True)
class Submission:
    """A backtest (`request`), a sweep (`sweep`) or a walk-forward (`walk_forward`, a sweep
    with walkForward): exactly one of them is set."""

    request: engine.BacktestRequest | None
    notify_via: NotifyChannel | None
    sweep: SweepSubmission | None = None
    walk_forward: WalkForwardSubmission | None = None


def parse_submit(
    body: bytes,
    store: engine.BarStore,
    *,
    max_combinations: int = engine.grid.MAX_COMBINATIONS,
) -> Submission:
    """The queue's body, validated fully: types, ranges, rules, and the stored data range;
    `{payload}` queues a backtest, `{sweep}` a parameter sweep."""
    obj = models.parse_json(body)
    # Both given is said as such, before either is read (a sweep's own errors would hide it).
    if isinstance(obj, dict) and obj.get("payload") is not None and obj.get("sweep") is not None:
        raise ValidationError.for_field("sweep", "give payload or sweep, not both")
    submit = models.validate(models.SubmitRequest, obj)
    if submit.payload is None and submit.sweep is None:
        raise ValidationError.for_field(
            "payload", "give payload (a backtest) or sweep (a parameter sweep)"
        )
    if submit.sweep is not None and submit.sweep.walk_forward is not None:
        walk_forward = walkforward_submission(obj["sweep"], store, max_combinations)
        return Submission(None, submit.notify_via, walk_forward=walk_forward)
    if submit.sweep is not None:
        sweep = sweep_submission(obj["sweep"], submit.sweep, store, max_combinations)
        return Submission(None, submit.notify_via, sweep)
    assert submit.payload is not None
    request = backtest_request(submit.payload)
    try:
        request = engine.check(request, store)
    except engine.EngineError as exc:
        raise engine_error(exc) from None
    return Submission(request, submit.notify_via)


def sweep_submission(
    document: dict[str, Any],
    model: models.SweepRequest,
    store: engine.BarStore,
    max_combinations: int,
) -> SweepSubmission:
    """A sweep as the queue takes it: planned, its payload checked against the data."""
    request = sweep_request(model, max_combinations=max_combinations)
    try:
        base = engine.check(request.base, store)
        combinations = len(engine.grid.plan(request).combinations)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    request = dataclasses.replace(request, base=base)
    unit_bars = max(1, int((base.end - base.start) / base.bar_duration))
    return SweepSubmission(dict(document), request, combinations, unit_bars)


def walkforward_submission(
    obj: dict[str, Any], store: engine.BarStore, max_combinations: int
) -> WalkForwardSubmission:
    """A walk-forward as the queue takes it: parsed, planned, its payload checked against the
    data. Its folds are cut by plan_walkforward, off the event loop (it binds every
    combination's rules: 0.15 s for 1,000)."""
    request = parse_walkforward(obj, "sweep", max_combinations=max_combinations)
    try:
        base = engine.check(request.sweep.base, store)
        combinations = len(engine.grid.plan(request.sweep).combinations)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    request = dataclasses.replace(request, sweep=dataclasses.replace(request.sweep, base=base))
    return WalkForwardSubmission(dict(obj), request, combinations)


def plan_walkforward(submission: WalkForwardSubmission, store: engine.BarStore) -> tuple[int, int]:
    """(units, bars per unit) of a walk-forward over the bars its data should hold. Its units
    are the engine's steps (engine.walkforward.fold_units per fold: each in-sample combination,
    then the out-of-sample backtest), so progress and waits move within a fold; a unit's bars
    are its fold's (combinations x in-sample bars + out-of-sample bars) / fold_units. An
    out-of-sample window too short for the rules is a 422 naming sweep.walkForward.folds here,
    not a failed job later."""
    request = submission.request
    try:
        bars = engine.estimate_bars(request.sweep.base, store)
        folds = engine.walkforward.plan_folds(request, bars)
    except engine.EngineError as exc:
        raise sweep_error(exc) from None
    in_sample = sum(end - first for first, end in (fold.in_sample for fold in folds))
    out_of_sample = sum(end - first for first, end in (fold.out_of_sample for fold in folds))
    steps = len(folds) * (submission.combinations + 1)
    return steps, max(1, round((submission.combinations * in_sample + out_of_sample) / steps))


def parse_sweep(
    obj: Any, path: str = "sweep", *, max_combinations: int = engine.grid.MAX_COMBINATIONS
) -> engine.SweepRequest:
    """SweepRequest JSON (a stored job's, a file's) -> engine.SweepRequest, its grid planned;
    a walkForward is refused here (parse_walkforward reads those)."""
    model = models.validate(models.SweepRequest, obj, path)
    if model.walk_forward is not None:
        raise ValidationError.for_field(_under(path, "walkForward"), "is not a known field")
    return sweep_request(model, path, max_combinations=max_combinations)


def sweep_request(
    model: models.SweepRequest,
    path: str = "sweep",
    *,
    max_combinations: int = engine.grid.MAX_COMBINATIONS,
) -> engine.SweepRequest:
    """A validated sweep -> engine.SweepRequest, its grid planned (so a constraint that leaves
    nothing, or a value that breaks a rule, is a 422 here); meaning in the engine."""
    errors: list[FieldError] = []
    parameters: dict[str, tuple[float, ...]] = {}
    for name, spec in model.parameters.items():
        values = _parameter_values(name, spec, _under(path, f"parameters.{name}"), errors)
        if values is not None:
            parameters[name] = values
    models.raise_if(errors)
    payload = model.payload
    texts = {
        PAYLOAD_FIELDS[key]: payload[key]
        for key in _RULE_PAYLOAD_FIELDS
        if isinstance(payload.get(key), str)
    }
    try:
        engine.grid.check_grid(texts, parameters)
        first = {name: values[0] for name, values in parameters.items()}
        # The payload with each parameter at its first value parses as an ordinary backtest.
        bound = dict(payload)
        for key in _RULE_PAYLOAD_FIELDS:
            if PAYLOAD_FIELDS[key] in texts:
                template = engine.rules.template(texts[PAYLOAD_FIELDS[key]], frozenset(first))
                bound[key] = template.bind(first)
        bound.update({name: first[name] for name in first if name in PAYLOAD_FIELDS})
        base = parse_payload(bound, _under(path, "payload"))
        request = engine.SweepRequest(
            base,
            texts,
            parameters,
            model.constraint,
            SWEEP_OBJECTIVES[model.objective],
            model.min_trades,
            model.out_of_sample,
            max_combinations,
        )
        engine.grid.plan(request)
    except engine.EngineError as exc:
        raise sweep_error(exc, path) from None
    return request


def _under(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _parameter_values(
    name: str, spec: list[float] | models.Range, field: str, errors: list[FieldError]
) -> tuple[float, ...] | None:
    """A parameter's values from its list or its {from, to, step}; None after an error."""
    if isinstance(spec, list):
        return tuple(spec)
    try:
        return engine.grid.expand(name, spec.from_, spec.to, spec.step)
    except engine.DataError as exc:
        where = field + (exc.field or "").removeprefix(f"parameters.{name}")
        errors.append(FieldError(where, str(exc)))
        return None


def sweep_error(exc: engine.EngineError, path: str = "sweep") -> ValidationError:
    """An engine complaint about a sweep, as a 422 naming the sweep or payload field."""
    under = f"{path}." if path else ""  # a walk-forward file is read from its root
    if exc.field is None:
        field = path or "body"
    elif exc.field in _CAMEL:
        field = f"{under}payload.{_CAMEL[exc.field]}"
    elif exc.field.startswith("parameters"):
        field = f"{under}{exc.field}"  # parameter names are the user's, never re-cased
    else:
        field = under + ".".join(models.camel(part) for part in exc.field.split("."))
    message = str(exc)
    return ValidationError(f"{field}: {message}", errors=[FieldError(field, message)])


def parse_walkforward(
    obj: Any, path: str = "", *, max_combinations: int = engine.grid.MAX_COMBINATIONS
) -> engine.walkforward.WalkForwardRequest:
    """A SweepRequest plus walkForward {folds, inSample, anchored} -> the engine's request;
    its outOfSample is ignored (each fold holds its own out-of-sample window)."""
    model = models.validate(models.WalkForwardRequest, obj, path)
    sweep = sweep_request(model, path, max_combinations=max_combinations)
    spec = model.walk_forward
    try:
        return engine.walkforward.WalkForwardRequest(
            sweep, spec.folds, spec.in_sample, spec.anchored
        )
    except engine.EngineError as exc:
        raise sweep_error(exc, path) from None
