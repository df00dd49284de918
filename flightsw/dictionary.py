"""The one dictionary: every parameter of the flight software, in a fixed order.

Each subsystem declares its parameters next to its code; this module only collects them.  The order is the
MAVLink parameter index, so append new parameters at the end of their subsystem's tuple and never reorder.
"""

from __future__ import annotations

from flightsw.params import ParamConstraint, ParamDecl


def all_param_decls() -> tuple[ParamDecl, ...]:
    from flightsw.actuators import ACTUATOR_PARAMS
    from flightsw.estimator import ESTIMATOR_PARAMS
    from flightsw.flightlogic import FLIGHT_PARAMS

    return (*ESTIMATOR_PARAMS, *ACTUATOR_PARAMS, *FLIGHT_PARAMS)


def all_param_constraints() -> tuple[ParamConstraint, ...]:
    """Every rule between parameters (each declared next to the parameters it relates)."""
    from flightsw.actuators import ACTUATOR_CONSTRAINTS
    from flightsw.flightlogic import FLIGHT_CONSTRAINTS

    return (*ACTUATOR_CONSTRAINTS, *FLIGHT_CONSTRAINTS)
