"""Which noise filter, if any, a listening session hears through."""

from __future__ import annotations

from application.ports import NOISE_REDUCTIONS, Denoiser, NoiseFilter, NoiseReduction
from domain.errors import InvalidRequest

_MODES: dict[str, NoiseReduction] = {mode: mode for mode in NOISE_REDUCTIONS}


def parse_mode(value: str) -> NoiseReduction:
    mode = _MODES.get(value)
    if mode is None:
        raise InvalidRequest(f"noise_reduction must be one of: {', '.join(NOISE_REDUCTIONS)}")
    return mode


def noise_mode(
    denoiser: Denoiser | None, default: NoiseReduction, choice: str | None
) -> NoiseReduction:
    """`choice`: the session's ("off", "near_field", "far_field"), None for `default`."""
    mode = parse_mode(default if choice is None else choice)
    if mode != "off" and denoiser is None:
        raise InvalidRequest("noise reduction is not available on this service")
    return mode


def open_filter(denoiser: Denoiser | None, mode: NoiseReduction) -> NoiseFilter | None:
    """Opened last, once nothing else can refuse the session: a filter holds a model state."""
    return None if mode == "off" or denoiser is None else denoiser.open(mode)
