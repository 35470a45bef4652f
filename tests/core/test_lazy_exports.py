"""Provider packages hand out their provider class on first access and refuse other names."""

from __future__ import annotations

import pytest

import lib.providers.bedrock as bedrock_pkg
import lib.providers.local as local_pkg
from lib.providers.bedrock.provider import BedrockProvider
from lib.providers.lazy import lazy_exports
from lib.providers.local.provider import CHAT_NAMES


def test_exported_names_are_the_provider_modules_objects() -> None:
    assert bedrock_pkg.BedrockProvider is BedrockProvider
    assert local_pkg.CHAT_NAMES is CHAT_NAMES


def test_other_names_are_attribute_errors_naming_the_package() -> None:
    with pytest.raises(AttributeError, match=r"'lib\.providers\.bedrock' has no attribute 'Nope'"):
        _ = bedrock_pkg.Nope  # type: ignore[attr-defined]
    assert not hasattr(local_pkg, "create_remote_provider")
    getattr_ = lazy_exports("pkg", "json", ["dumps"])
    assert getattr_("dumps")([1]) == "[1]"
    with pytest.raises(AttributeError, match="'pkg' has no attribute 'loads'"):
        getattr_("loads")  # in json, but not exported
