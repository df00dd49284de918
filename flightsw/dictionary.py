"""The one dictionary: every parameter of the flight software, in a fixed order.

Each subsystem declares its parameters next to its code; this module only collects them.  The order is the
MAVLink parameter index, so append new parameters at the end of their subsystem's tuple and never reorder.
"""

from __future__ import annotations

from flightsw.params import ParamDecl


def all_param_decls() -> tuple[ParamDecl, ...]:
    from flightsw.actuators import ACTUATOR_PARAMS
    from flightsw.estimator import ESTIMATOR_PARAMS
    from flightsw.flightlogic import FLIGHT_PARAMS

    return (*ESTIMATOR_PARAMS, *ACTUATOR_PARAMS, *FLIGHT_PARAMS)
