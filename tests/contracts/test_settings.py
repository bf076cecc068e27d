"""The shared settings mechanism: read from a given mapping only, blanks unset, every bad
variable named by its environment name, with a message that says what it must be."""

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import pytest
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from contracts.settings import CODE_ONLY, CaseInsensitive, EnvSettings, SettingsError


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Example(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="EX_")
    label = "example"

    name: str
    token: SecretStr = SecretStr("")
    colour: Annotated[Colour, CaseInsensitive] = Colour.RED
    count: int = Field(default=1, ge=1, le=10)
    ratio: float = Field(default=0.5, gt=0, lt=1)
    floor: float = Field(default=0.0, ge=0)
    ceiling: int = Field(default=0, le=5)
    unbounded: int = 0
    verbose: bool = False
    level: Literal["LOW", "HIGH"] = "LOW"
    code: str = Field(default="abc", min_length=2, max_length=4)
    odd: int = 1
    home: str = Field(default="/", validation_alias=AliasChoices("HOME_DIR", "HOME_FOLDER"))
    due: date | None = Field(default=None, validation_alias="DUE_DATE")
    extra: Annotated[dict[str, str], CODE_ONLY] = Field(default_factory=dict)

    @field_validator("odd")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd")
        return value


def test_values_come_from_the_mapping_stripped_with_prefix_and_aliases() -> None:
    env = {
        "EX_NAME": " box ",
        "EX_COLOUR": "BLUE",
        "EX_COUNT": "3",
        "EX_VERBOSE": "yes",
        "HOME_FOLDER": "/srv",
    }
    settings = Example.from_env(env)
    assert (settings.name, settings.colour, settings.count) == ("box", Colour.BLUE, 3)
    assert settings.verbose and settings.home == "/srv"


def test_blank_values_count_as_unset() -> None:
    with pytest.raises(SettingsError) as caught:
        Example.from_env({"EX_NAME": "  ", "EX_COUNT": ""})
    assert caught.value.problems == {"EX_NAME": "missing"}


def test_code_only_fields_and_overrides() -> None:
    settings = Example.from_env({"EX_NAME": "a", "EX_EXTRA": '{"x": "y"}'}, name="b")
    assert settings.extra == {} and settings.name == "b"


def test_the_process_environment_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EX_NAME", "from-os")
    monkeypatch.setenv("EX_COUNT", "9")
    assert Example(name="given").count == 1
    with pytest.raises(SettingsError, match="EX_NAME: missing"):
        Example.from_env({})


MALFORMED = [
    ("EX_COLOUR", "green", "must be one of red, blue"),
    ("EX_COUNT", "many", "must be an integer from 1 to 10"),
    ("EX_RATIO", "1", "must be a number above 0 and below 1"),
    ("EX_FLOOR", "-1", "must be a number of at least 0"),
    ("EX_CEILING", "6", "must be an integer of at most 5"),
    ("EX_UNBOUNDED", "x", "must be an integer"),
    ("EX_VERBOSE", "maybe", "must be true or false (1/0, yes/no, on/off)"),
    ("EX_LEVEL", "mid", "must be one of LOW, HIGH"),
    ("EX_CODE", "abcdef", "must be at most 4 characters"),
    ("EX_ODD", "2", "must be odd"),
    ("DUE_DATE", "someday", "Input should be a valid date or datetime, input is too short"),
]


def test_every_problem_is_named_at_once_and_says_what_it_must_be() -> None:
    env = {name: value for name, value, _ in MALFORMED}
    with pytest.raises(SettingsError) as caught:
        Example.from_env({**env, "EX_NAME": "ok", "EX_TOKEN": "hunter2-secret", "HOME_DIR": ""})
    assert caught.value.problems == {name: reason for name, _, reason in MALFORMED}
    assert str(caught.value).startswith("invalid example settings: EX_COLOUR: must be one of")
    assert "hunter2-secret" not in str(caught.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_numbers_must_be_finite(value: str) -> None:
    with pytest.raises(SettingsError, match="EX_FLOOR"):
        Example.from_env({"EX_NAME": "a", "EX_FLOOR": value})


def test_too_short_and_alias_names() -> None:
    with pytest.raises(SettingsError) as caught:
        Example.from_env({"EX_NAME": "a", "EX_CODE": "x"})
    assert caught.value.problems == {"EX_CODE": "must be at least 2 characters"}
    assert Example.env_name("home") == "HOME_DIR"
    assert Example.env_name("due") == "DUE_DATE"
    assert Example.env_name("count") == "EX_COUNT"
