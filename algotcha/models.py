"""Every request and response shape of the API, once: validation and /openapi.json both read these.

Strict (no "10" for 10, no true for 1), unknown fields refused, camelCase on the wire. A refusal
becomes a ValidationError whose errors name the field path (`payload.stopLoss`) in the words
docs/api.md uses. Imports pydantic and the standard library only, so the CLI loads it quickly;
engine limits written here are tied to the engine's own by tests/unit/algotcha/test_models.py.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

import pydantic
import pydantic_core
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StringConstraints,
    Tag,
    WrapValidator,
)
from pydantic.alias_generators import to_camel

from algotcha.errors import FieldError, MalformedJSONError, ValidationError
from algotcha.vocabulary import JobKindName, JobStatus, NotifyChannel, Objective, Timeframe

M = TypeVar("M", bound=BaseModel)

# engine.request and engine.grid hold the same numbers (the engine checks its own requests too).
MAX_RATE = 0.05
SYMBOL_PATTERN = r"^[A-Z0-9_-]{1,30}$"
MAX_PARAMETERS = 4
MAX_VALUES = 1000
MIN_FOLDS, MAX_FOLDS = 2, 20
TRADES_PAGE_MAX = 1000
COMPARE_MIN, COMPARE_MAX = 2, 6


# --- JSON bodies ---------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """Decode a request body strictly.

    A body that is not JSON at all (not UTF-8, or not starting like a JSON document) is a 400;
    a JSON document with a syntax error is a 422 that says where.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSONError(f"the body is not UTF-8 (byte {exc.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise MalformedJSONError("the body is empty; send a JSON object")
    if stripped[0] not in "{[":
        raise MalformedJSONError("the body is not JSON; send a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            errors=[FieldError("body", f"{exc.msg} at line {exc.lineno} column {exc.colno}")],
        ) from None
    except RecursionError:
        raise ValidationError.for_field("body", "nested too deeply") from None
    except ValueError:
        # Python refuses to read an integer of more than 4,300 digits (CVE-2020-10735).
        raise ValidationError.for_field("body", "holds a number with too many digits") from None
    # Both can only arrive as \u escapes: raw NUL is a JSON syntax error, and UTF-8 cannot
    # encode a surrogate, so a body without a backslash-u needs no walk.
    if "\\u" in text:
        raise_if(unstorable_strings(value))
    return value


# NUL: PostgreSQL's text and jsonb refuse it. A lone surrogate: UTF-8 cannot encode it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(text: str) -> str | None:
    """Why PostgreSQL (text, jsonb) or any UTF-8 consumer cannot take `text`; None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain U+0000 (NUL)"
    return f"must not contain a lone surrogate (U+{ord(found.group()):04X})"


def unstorable_strings(value: Any, path: str = "") -> list[FieldError]:
    """Every string (object keys too) in a decoded JSON value that cannot be stored, by path."""
    errors: list[FieldError] = []
    # Iterative: nesting is bounded only by json's recursion limit, and the walk must not be.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = unstorable_text(item)
            if problem:
                errors.append(FieldError(where or "body", problem))
        elif isinstance(item, dict):
            for key, child in item.items():
                # The key goes into the path escaped, so the error itself stays printable.
                shown = json.dumps(key)[1:-1]
                child_path = f"{where}.{shown}" if where else shown
                problem = unstorable_text(key)
                if problem:
                    errors.append(FieldError(child_path, f"the key {problem}"))
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where or 'body'}[{i}]", child) for i, child in enumerate(item))
    return sorted(errors, key=lambda e: e.field)


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise ValidationError(detail, errors=errors)


def read(model: type[M], body: bytes) -> M:
    """A request body as `model`, or the 400/422 naming every field at fault."""
    return validate(model, parse_json(body))


def validate(model: type[M], value: Any, path: str = "") -> M:
    """A decoded JSON value as `model`; errors are named under `path` (e.g. "sweep")."""
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise_if([_field_error(error, path) for error in exc.errors(include_url=False)])
        raise  # pragma: no cover - a pydantic ValidationError always holds an error


# pydantic's error types in docs/api.md's words; a field's own wording comes from _says.
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
}


def _field_error(error: Any, path: str) -> FieldError:
    where = path
    for part in error["loc"]:
        if part in _TAGS:
            continue
        if isinstance(part, int):
            where = f"{where or 'body'}[{part}]"
        else:
            where = f"{where}.{part}" if where else str(part)
    return FieldError(where or "body", _MESSAGES.get(error["type"], error["msg"]))


def _says(message: str | Callable[[Any], str], *types: str) -> WrapValidator:
    """This field's own message (or message of the value) for pydantic's error `types` (for
    any error when none given)."""

    def validate(value: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except pydantic.ValidationError as exc:
            if types and exc.errors()[0]["type"] not in types:
                raise
            text = message if isinstance(message, str) else message(value)
            raise pydantic_core.PydanticCustomError("value_error", text) from None

    return WrapValidator(validate)


def _one_of(choices: Any) -> WrapValidator:
    return _says(f"must be one of {', '.join(get_args(choices))}")


def _timestamp(value: Any) -> Any:
    message = "must be an ISO 8601 time such as 2024-05-01T00:00:00Z"
    if not isinstance(value, str):
        raise pydantic_core.PydanticCustomError("value_error", message)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise pydantic_core.PydanticCustomError("value_error", message) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value):
        raise pydantic_core.PydanticCustomError("value_error", "must be an email address")
    return value.strip()


def _finite(value: Any) -> Any:
    # An integer beyond 1.8e308 has no float: pydantic would answer "must be a number".
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise pydantic_core.PydanticCustomError(
                "value_error", "must be a finite number"
            ) from None
    return value


def _length(low: int, high: int) -> tuple[StringConstraints, WrapValidator]:
    return StringConstraints(min_length=low, max_length=high), _says(
        f"must be {low} to {high} characters", "string_too_short", "string_too_long"
    )


_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_NAME_LENGTH = _length(1, 100)
_RULE_LENGTH = _length(0, 2000)
_RATE_SAYS = _says(f"must be between 0 and {MAX_RATE} (5 %) per side", *_BOUND_ERRORS)
_FRACTION_SAYS = _says("must be null or between 0 and 1, e.g. 0.02", *_BOUND_ERRORS)


def _number(**bounds: float) -> tuple[Any, ...]:
    """A finite JSON number within `bounds` (gt, ge, lt, le), as metadata for Annotated.

    The bounds sit beside allow_inf_nan, before any validator, so that the document says
    exclusiveMinimum and so on rather than pydantic's own words for them.
    """
    return Field(allow_inf_nan=False, **bounds), BeforeValidator(_finite)  # type: ignore[call-overload]


Number = Annotated[float, *_number()]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Email = Annotated[str, Field(json_schema_extra={"format": "email"}), BeforeValidator(_email)]
Rule = Annotated[str, *_RULE_LENGTH]
StrategyName = Annotated[str, *_NAME_LENGTH]
Symbol = Annotated[
    str,
    StringConstraints(pattern=SYMBOL_PATTERN),
    _says(
        "must be 1-30 upper-case letters, digits, '_' or '-', e.g. BTCUSDT",
        "string_pattern_mismatch",
    ),
]
Channel = Annotated[NotifyChannel, _one_of(NotifyChannel)]
Rate = Annotated[float, *_number(ge=0, le=MAX_RATE), _RATE_SAYS]
Fraction = Annotated[float, *_number(gt=0, lt=1), _FRACTION_SAYS]


class Shape(BaseModel):
    """Strict, closed, camelCase on the wire."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _null_takes_the_default(cls, data: Any) -> Any:
        """`"feeRate": null` means "the default", as it always has; so does leaving it out."""
        if not isinstance(data, dict):
            return data
        defaulted = _defaulted(cls)
        return {k: v for k, v in data.items() if v is not None or k not in defaulted}


@functools.cache
def _defaulted(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        info.alias or name
        for name, info in model.model_fields.items()
        if not info.is_required() and info.default is not None
    )


def nullable_defaults(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The document says what _null_takes_the_default accepts: null for a defaulted field."""
    for name in _defaulted(model):
        prop = schema.get("properties", {}).get(name)
        if prop is not None and "anyOf" not in prop:
            default = prop.pop("default", None)
            schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], "default": default}


class Request(Shape):
    """A request body: its document also admits null where a default applies."""

    model_config = ConfigDict(json_schema_extra=nullable_defaults)


# --- requests ----------------------------------------------------------------------------------


class RunBacktestDto(Request):
    """RunBacktestDto: one backtest (docs/api.md "Backtest payload")."""

    strategy_name: StrategyName
    symbol: Symbol
    timeframe: Annotated[Timeframe, _one_of(Timeframe)]
    start: Timestamp
    end: Timestamp
    initial_capital: Annotated[
        float, *_number(gt=0), _says("must be greater than 0", *_BOUND_ERRORS)
    ]
    fee_rate: Rate = 0.0
    slippage: Rate = 0.0
    position_size: Annotated[
        float,
        *_number(gt=0, le=1),
        _says("must be above 0 and at most 1 (all equity)", *_BOUND_ERRORS),
    ] = 1.0
    long_entry: Rule | None = None
    long_exit: Rule | None = None
    short_entry: Rule | None = None
    short_exit: Rule | None = None
    stop_loss: Fraction | None = None
    take_profit: Fraction | None = None
    trailing_stop: Fraction | None = None


# Tags of a parameter's two spellings; not identifiers, so never a parameter's own name.
_VALUES_TAG, _RANGE_TAG = "list of numbers", "{from, to, step}"


class Range(Shape):
    """A parameter's values from `from` to `to` inclusive, `step` apart (engine.grid.expand)."""

    from_: Number = Field(alias="from")
    to: Number
    step: Annotated[float, *_number(gt=0), _says("must be above 0, e.g. 1", "greater_than")]


def _spelling(value: Any) -> str | None:
    if isinstance(value, list):
        return _VALUES_TAG
    return _RANGE_TAG if isinstance(value, dict) else None


ParameterValues = Annotated[
    Annotated[
        list[Number],
        Field(min_length=1, max_length=MAX_VALUES),
        _says(f"must list 1 to {MAX_VALUES:,} numbers", "too_short", "too_long"),
        Tag(_VALUES_TAG),
    ]
    | Annotated[Range, Tag(_RANGE_TAG)],
    Discriminator(
        _spelling,
        custom_error_type="parameter_spelling",
        custom_error_message="must be {from, to, step} or a list of numbers",
    ),
]
_TAGS = frozenset((_VALUES_TAG, _RANGE_TAG))


class WalkForward(Request):
    """How a walk-forward cuts the period into folds."""

    folds: Annotated[
        int,
        Field(ge=MIN_FOLDS, le=MAX_FOLDS),
        _says(lambda n: f"folds must be {MIN_FOLDS} to {MAX_FOLDS}; got {n}", *_BOUND_ERRORS),
    ]
    in_sample: Annotated[
        float,
        *_number(ge=0.5, le=0.9),
        _says("must be between 0.5 and 0.9 of each window, e.g. 0.7", *_BOUND_ERRORS),
    ]
    anchored: bool = False


class SweepRequest(Request):
    """A parameter sweep: a payload whose rules name parameters, and each parameter's values."""

    payload: dict[str, Any] = Field(
        description="a RunBacktestDto whose rules (and numeric fields) may name the parameters"
    )
    parameters: Annotated[
        dict[str, ParameterValues],
        Field(min_length=1, max_length=MAX_PARAMETERS),
        _says(f"give 1 to {MAX_PARAMETERS} parameters", "too_short", "too_long"),
    ]
    constraint: Annotated[str, *_length(1, 1000)] | None = None
    objective: Annotated[Objective, _one_of(Objective)] = "sharpe"
    min_trades: Annotated[int, Field(ge=0), _says("must be 0 or more", "greater_than_equal")] = 10
    out_of_sample: Annotated[
        float, *_number(ge=0, le=0.5), _says("must be between 0 and 0.5, e.g. 0.3", *_BOUND_ERRORS)
    ] = 0.3
    walk_forward: WalkForward | None = Field(
        None, description="makes the sweep a walk-forward (outOfSample is then ignored)"
    )


class WalkForwardRequest(SweepRequest):
    """A sweep run fold by fold; its outOfSample is ignored (each fold holds its own)."""

    walk_forward: WalkForward  # required here


def _exactly_one_of_payload_and_sweep(schema: dict[str, Any], model: type[BaseModel]) -> None:
    nullable_defaults(schema, model)
    for name in ("payload", "sweep"):
        schema["properties"][name] = schema["properties"][name]["anyOf"][0]
    schema["oneOf"] = [{"required": ["payload"]}, {"required": ["sweep"]}]


class SubmitRequest(Request):
    """The queue's body: exactly one of payload (a backtest) and sweep (a parameter sweep)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of_payload_and_sweep)

    payload: RunBacktestDto | None = None
    sweep: SweepRequest | None = None
    notify_via: Channel | None = Field(None, description="defaults to the profile's choice")

    @pydantic.field_validator("payload", "sweep", mode="before")
    @classmethod
    def _given_or_left_out(cls, value: Any) -> Any:
        """Left out, not null: which of the two is given says what the job is."""
        if value is None:
            raise pydantic_core.PydanticCustomError("value_error", "must be a JSON object")
        return value


class Registration(Request):
    email: Email
    password: Annotated[str, *_length(8, 1024)]
    name: Annotated[str, *_length(0, 100)] = ""


class Login(Request):
    email: Annotated[str, *_length(1, 254)]
    password: Annotated[str, *_length(1, 1024)]


class ProfileChange(Request):
    name: Annotated[str, *_length(0, 100)] | None = None
    notify_via: Channel | None = None


class NotifyChoice(Request):
    """The optional body of a combination's backtest: an empty body means the default."""

    notify_via: Channel | None = None


class ShareRequest(Request):
    """An empty body: the link lasts until revoked."""

    expires_in_days: (
        Annotated[
            float,
            *_number(ge=1, le=365),
            _says("must be a number of days from 1 to 365", *_BOUND_ERRORS),
        ]
        | None
    ) = None


# --- responses ---------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Cached: a result repeats a few dozen keys thousands of times (equity points, trades).
@functools.cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(k): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


Time = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    Field(json_schema_extra={"format": "date-time"}),
]
Minutes = Annotated[int, Field(ge=0, description="minutes")]


class Answer(Shape):
    """A response body: built by name in Python, written camelCase."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=False)
    # Fields that only some answers carry (a sweep's counts): left out unless given.
    only_when_given: ClassVar[frozenset[str]] = frozenset()

    def dump(self) -> dict[str, Any]:
        absent = self.only_when_given - self.model_fields_set
        return self.model_dump(mode="json", by_alias=True, exclude=set(absent))


class Accepted(Answer):
    only_when_given = frozenset({"combinations", "folds"})

    success: Literal[True] = True
    queue_id: int
    position: Annotated[int, Field(ge=1)] | None
    estimated_wait: Minutes | None
    combinations: int | None = Field(
        None, description="a sweep's (a walk-forward's per fold), after its constraint"
    )
    folds: int | None = Field(None, description="walk-forwards only")


class Position(Answer):
    id: int
    status: JobStatus
    queue_position: int | None
    progress: Annotated[int, Field(ge=0, le=100)]
    estimated_wait: Minutes | None


class BacktestQueue(Answer):
    """BacktestQueue: a job as its owner sees it; `payload` and `result` on the one-job route."""

    only_when_given = frozenset(
        {"combinations", "combinations_done", "folds", "folds_done", "payload"}
    )

    id: int
    kind: JobKindName
    strategy_name: str
    symbol: str | None
    timeframe: str | None
    status: JobStatus
    queue_position: int | None
    progress: Annotated[int, Field(ge=0, le=100)]
    estimated_wait: Minutes | None
    notify_via: NotifyChannel
    attempt: int
    created_at: Time
    started_at: Time | None
    completed_at: Time | None
    error: str | None
    result: dict[str, Any] | None = Field(
        description="the one-job route only: a BacktestResult, SweepResult or walk-forward result"
    )
    combinations: int | None = Field(None, description="sweeps only")
    combinations_done: int | None = Field(None, description="sweeps only")
    folds: int | None = Field(None, description="walk-forwards only")
    folds_done: int | None = Field(None, description="walk-forwards only")
    payload: dict[str, Any] | None = Field(
        None, description="the one-job route only: the RunBacktestDto or SweepRequest as stored"
    )


class Cancelled(Answer):
    id: int
    status: JobStatus
    cancel_requested: bool


class Stats(Answer):
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    total_in_queue: int
    workers: int
    estimated_wait_minutes: int
    sweep_seconds_per_combination_bar: Annotated[float, Field(gt=0)]


class Registered(Answer):
    id: int
    email: str
    name: str


class Token(Answer):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: Annotated[int, Field(description="seconds")]


class User(Answer):
    id: int
    email: str
    name: str
    telegram_linked: bool
    notify_via: NotifyChannel


class Link(Answer):
    """A one-time Telegram deep link (https://t.me/<bot>?start=<token>) or a share link."""

    url: str
    expires_at: Time | None


class DatasetSource(Answer):
    kind: Literal["synthetic", "import", "download"]
    files: list[str]
    url: str | None
    updated_at: Time | None


class Dataset(Answer):
    symbol: str
    start: Time
    end: Time
    bars: Annotated[int, Field(ge=0)]
    synthetic: bool
    source: DatasetSource | None


class TradePage(Answer):
    count: int
    after: int
    trades: list[dict[str, Any]]
    next: str | None


class ComparedRun(Answer):
    id: int
    strategy_name: str
    symbol: str | None
    timeframe: str | None
    completed_at: Time | None


class MetricRow(Answer):
    key: str
    values: list[float | None]
    best: int | None


class SettingRow(Answer):
    key: str
    values: list[Any]
    differs: bool


class EquitySeries(Answer):
    t: list[Any]
    series: list[list[float | None]]


class Comparison(Answer):
    runs: list[ComparedRun]
    metrics: list[MetricRow]
    settings: list[SettingRow]
    equity: EquitySeries


class SharedResult(Answer):
    """A shared result: the run and its settings, nothing of the account that owns it."""

    strategy_name: str
    symbol: str | None
    timeframe: str | None
    status: JobStatus
    completed_at: Time | None
    payload: dict[str, Any]
    result: dict[str, Any]


class Health(Answer):
    status: Literal["ok"] = "ok"


class Readiness(Answer):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool]


class FieldProblem(Shape):
    field: str
    message: str


class Problem(Shape):
    """RFC 9457 problem details; `errors` names each field at fault."""

    type: str
    title: str
    status: int
    detail: str
    success: Literal[False]
    errors: list[FieldProblem] | None = None
