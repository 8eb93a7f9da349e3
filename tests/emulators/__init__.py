"""Loopback emulators of the hosted fill APIs (fal.ai, WaveSpeedAI) for tests. README.md."""
from ._base import CA_FILE, FAULT_KINDS
from ._images import bomb_png, fill_colour
from .fal import FalEmulator
from .wavespeed import WaveSpeedEmulator

__all__ = ["CA_FILE", "FAULT_KINDS", "FalEmulator", "WaveSpeedEmulator", "bomb_png", "fill_colour"]
