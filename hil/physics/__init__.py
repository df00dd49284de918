"""The simulated balloon world for hardware-in-the-loop runs (see :mod:`hil.physics.balloon`)."""

from hil.physics.balloon import BalloonWorld, WorldInputs, WorldState, launch_gas_mass_kg
from hil.physics.config import BalloonConfig, LaunchConfig, PayloadConfig, WindConfig, WindLayer, WorldConfig

__all__ = ["BalloonConfig", "BalloonWorld", "LaunchConfig", "PayloadConfig", "WindConfig", "WindLayer",
           "WorldConfig", "WorldInputs", "WorldState", "launch_gas_mass_kg"]
