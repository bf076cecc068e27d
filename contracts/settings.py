"""The one settings mechanism of the edge, the agent and the engine: pydantic-settings fed
from an explicit mapping, so only a CLI (os.environ) or the Worker (its `env` bindings)
decides where values come from, and tests pass plain dicts.

The field constraints are the checks; `from_env` turns pydantic's errors into one
`SettingsError` naming every bad variable by its environment name, so one restart fixes all.
"""

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AliasChoices, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class SettingsError(ValueError):
    """Every missing or malformed variable, by its environment name, in one message."""

    def __init__(self, label: str, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        detail = "; ".join(f"{name}: {why}" for name, why in self.problems.items())
        super().__init__(f"invalid {label} settings: {detail}")


class CodeOnly:
    """Marks a field that code sets (a model_copy, a `from_env` override), never a variable."""


CODE_ONLY = CodeOnly()


def _fold_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


CaseInsensitive = BeforeValidator(_fold_case)
"""For choices (enums, lower-case values): `Resident` and `RESIDENT` mean `resident`."""


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
]
"""`LOG_LEVEL`, the same for every process; `info` means `INFO`."""


class MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source reading a given mapping instead of os.environ;
    values are stripped, and blank ones count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = {name: value.strip() for name, value in env.items() if value.strip()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._env.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if CODE_ONLY in field.metadata:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class EnvSettings(BaseSettings):
    """Base of the three settings classes: built from a mapping by `from_env`, or from
    keyword arguments alone (tests), never from the process environment behind one's back."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        allow_inf_nan=False,
        validate_by_name=True,
        case_sensitive=False,
    )
    label: ClassVar[str]
    """Which settings these are, in error messages: "invalid {label} settings: ..."."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Self:
        """Validate `env`'s variables, with `overrides` (set by code) taking precedence."""
        try:
            return cls.model_validate({**MappingSource(cls, env)(), **overrides})
        except ValidationError as exc:
            raise SettingsError(cls.label, cls._problems(exc)) from None

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The variable a field is read from: its alias, else the prefix and its name."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        if isinstance(alias, str):
            return alias.upper()
        return (cls.model_config.get("env_prefix", "") + field_name).upper()

    @classmethod
    def _problems(cls, exc: ValidationError) -> dict[str, str]:
        by_key: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            by_key[name] = name
            if isinstance(info.validation_alias, str):
                by_key[info.validation_alias] = name
            elif isinstance(info.validation_alias, AliasChoices):
                by_key.update({str(choice): name for choice in info.validation_alias.choices})
        problems: dict[str, str] = {}
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            field_name = by_key.get(key, by_key.get(key.lower(), key))
            field = cls.model_fields.get(field_name)
            env_name = cls.env_name(field_name) if field else key.upper()
            problems.setdefault(env_name, _reason(field, error))
        return problems


def _reason(field: FieldInfo | None, error: ErrorDetails) -> str:
    """A message saying what the variable must be, rather than what pydantic tried."""
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    kind = _plain_type(field.annotation) if field else None
    if isinstance(kind, type) and issubclass(kind, Enum):
        return f"must be one of {', '.join(str(member.value) for member in kind)}"
    if get_origin(kind) is Literal:
        return f"must be one of {', '.join(str(choice) for choice in get_args(kind))}"
    if kind is bool:
        return "must be true or false (1/0, yes/no, on/off)"
    if kind in (int, float) and field is not None:
        noun = "an integer" if kind is int else "a number"
        return f"must be {noun}{_range(field)}"
    if error["type"] in ("string_too_short", "string_too_long"):
        side, limit = (
            ("least", "min_length")
            if error["type"] == "string_too_short"
            else ("most", "max_length")
        )
        return f"must be at {side} {error.get('ctx', {}).get(limit)} characters"
    return error["msg"]


def _plain_type(annotation: Any) -> Any:
    """`int` for `int | None`: the type a variable's text is parsed into."""
    members = [arg for arg in getattr(annotation, "__args__", ()) if arg is not type(None)]
    return members[0] if len(members) == 1 else annotation


def _range(field: FieldInfo) -> str:
    bounds = {
        name: getattr(rule, name)
        for rule in field.metadata
        if isinstance(rule, Ge | Gt | Le | Lt)
        for name in _BOUND_PHRASES
        if hasattr(rule, name)
    }
    if "ge" in bounds and "le" in bounds:
        return f" from {bounds['ge']:g} to {bounds['le']:g}"
    phrases = [_BOUND_PHRASES[name].format(value) for name, value in bounds.items()]
    return f" {' and '.join(phrases)}" if phrases else ""


_BOUND_PHRASES = {
    "ge": "of at least {:g}",
    "gt": "above {:g}",
    "le": "of at most {:g}",
    "lt": "below {:g}",
}
