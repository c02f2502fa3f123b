"""The whole pulse-gated learning circuit: blocks wired from a compiled schedule.

:class:`NetworkCore` elaborates every group, matrix, mask and learning rule of a
:class:`~golden_model.schedule.Schedule` into gateware: a :class:`PopulationAccumulator` per
population group, registers per held group, a :class:`SynapseUnit` per matrix (``W`` by rows,
its transposed copy by columns), a :class:`HebbianUnit` per learned matrix sharing one LFSR, and
the :class:`GatingSequencer` replaying the schedule. It computes exactly what
:class:`golden_model.circuit.Circuit` computes in fixed point, tick by tick.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config, ConfigError
from golden_model.schedule import HELD, POP, Schedule
from golden_model.trace import COUNTERS, StateLayout

from .arithmetic import Arithmetic
from .cores import core_ports
from .fixedpoint import (
    balanced_sum,
    is_negative,
    is_positive,
    named,
    saturate,
)
from .hebbian import HebbianUnit
from .host_port import HostPort, weight_spots
from .lfsr import MultiStepLfsr
from .multipliers import MultiplierPool
from .population import COUNTER_WIDTH, PopulationAccumulator
from .sequencer import GatingSequencer, port_name
from .spatial_control import (
    DebugPort,
    HostWeightAccess,
    InputLoader,
    SaturationCounter,
    TickControl,
)
from .synapse import SynapseUnit, matrix_layout

__all__ = [
    "NetworkCore",
    "HostPort",
    "POOLS",
    "lanes_label",
    "multiplier_count",
    "multiplier_families",
    "multiplier_pool",
    "resolve_lanes",
    "sweep_depths",
]


#: Where multipliers are shared: per matrix (its sweeps and its learning rule), or one pool
#: for the whole core (every sweep and rule; the rules then take turns).
POOLS = ("matrix", "core")


def multiplier_pool(lanes: int | Mapping[str, int | str]) -> str:
    """The pool of a lane setting: ``"core"`` when it says ``pool=core``, else ``"matrix"``."""
    if isinstance(lanes, Mapping) and "pool" in lanes:
        pool = lanes["pool"]
        if pool not in POOLS:
            raise ConfigError("lanes", f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        return pool
    return "matrix"


def resolve_lanes(schedule: Schedule, lanes: int | Mapping[str, int]) -> dict[str, int]:
    """Multiply-accumulates per clock for every matrix of ``schedule``: one count for all, or
    a count per learned or read matrix (a transposed copy takes its primary's count, as the
    Hebbian unit updates both a word at a time; naming the copy is allowed if it agrees).
    A mapping may also name the multiplier pool (``"pool": "core"``, :data:`POOLS`)."""
    multiplier_pool(lanes)  # checked here too
    if isinstance(lanes, Mapping):
        lanes = {k: v for k, v in lanes.items() if k != "pool"}
    names = [m.name for m in schedule.matrices]
    primary = {m.name: m.transpose_of or m.name for m in schedule.matrices}
    if isinstance(lanes, int):
        given = {name: lanes for name in names}
    else:
        given = dict(lanes)
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ConfigError("lanes", f"no matrix named {', '.join(unknown)} (matrices: {names})")
        for name in names:
            if name not in given and primary[name] in given:
                given[name] = given[primary[name]]
        missing = [name for name in names if name not in given]
        if missing:
            raise ConfigError("lanes", f"no count for matrix {', '.join(missing)}")
        for name in names:
            if given[name] != given[primary[name]]:
                raise ConfigError(
                    "lanes",
                    f"{name} ({given[name]}) must match {primary[name]} "
                    f"({given[primary[name]]}), the matrix it copies",
                )
    for name, count in given.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError("lanes", f"{name} needs a whole number >= 1, got {count!r}")
    return {name: given[name] for name in names}


def lanes_label(lanes: int | Mapping[str, int]) -> str:
    """``22``, ``W1=33,W2=17`` or ``W1=65,W2=132,pool=core``: a lane setting as the
    command line takes it."""
    if isinstance(lanes, int | tuple):  # a count, or a memory core's Fold ("8x32")
        return str(lanes)
    return ",".join(f"{name}={n}" for name, n in lanes.items())


def sweep_depths(
    schedule: Schedule,
    cfg: Config,
    lanes: int | Mapping[str, int],
    *,
    share_multipliers: bool = True,
) -> list[int]:
    """Clocks the weight sweeps take in one sample at ``lanes`` multiply-accumulates per clock
    (one count, or one per matrix as in :func:`resolve_lanes`), one entry per stage that
    sweeps, in schedule order: the matrix transfers of each tick (``W`` by rows, ``W^T`` by
    columns; sweeps of one tick run at once, so the longest counts) and a phase's learning
    updates (a word of ``W`` per clock; at once too, unless stochastic rounding makes them take
    turns, or the core has one multiplier pool). Their sum plus the control clocks is a
    sample's length; it never depends on data. ``share_multipliers`` as the core's
    (:class:`NetworkCore`): without it a ``pool=core`` plan keeps a pool per matrix."""
    counts = resolve_lanes(schedule, lanes)
    pool = _pooled(schedule, lanes) if share_multipliers else "matrix"
    together = cfg.rounding != "stochastic" and pool != "core"

    def depth(name: str) -> int:
        return matrix_layout(schedule, name, counts[name], cfg.weight_width).depth

    depths = []
    for phase in schedule.phases:
        if phase.learns:
            learning = [depth(ln.matrix) for ln in phase.learns]
            depths += [max(learning)] if together else learning
        swept = {t.matrix for tr in phase.transfers for t in tr.terms} - {None}
        if swept:
            longest = max(depth(n) for n in swept)
            depths += [longest] * cfg.ticks_per_window
    return depths


def _read_in(schedule: Schedule) -> dict[str, set[int]]:
    """The phases that sweep each matrix."""
    read_in: dict[str, set[int]] = {}
    for index, phase in enumerate(schedule.phases):
        for tr in phase.transfers:
            for t in tr.terms:
                if t.matrix is not None:
                    read_in.setdefault(t.matrix, set()).add(index)
    return read_in


def _sweeps_apart(schedule: Schedule) -> bool:
    """No phase sweeps two matrices (which would multiply at once)."""
    phases = [p for swept in _read_in(schedule).values() for p in swept]
    return len(phases) == len(set(phases))


def _pooled(schedule: Schedule, lanes) -> str:
    """The pool a setting gets: ``"core"`` only if asked for and the sweeps keep apart."""
    return "core" if multiplier_pool(lanes) == "core" and _sweeps_apart(schedule) else "matrix"


def multiplier_families(schedule: Schedule, pool: str = "matrix") -> dict[str, list[str]]:
    """The units that can share one set of multipliers, per primary matrix: its synapse unit,
    its transposed copy's and its learning rule (``"W2"``, ``"W2T"``, ``"learn W2"``). A tick
    learns, then sweeps, so a rule never multiplies while a sweep does; two sweeps of one
    family in the same phase would, and then each keeps its own (a family of one).
    ``pool="core"``: one family, ``"core"``, of every unit, if no phase sweeps two matrices
    (the learning rules then take turns); otherwise the families per matrix."""
    learned = {ln.matrix for ph in schedule.phases for ln in ph.learns}
    read_in = _read_in(schedule)
    if pool == "core" and _sweeps_apart(schedule):
        sweeps = [m.name for m in schedule.matrices if m.name in read_in]
        rules = [f"learn {m.name}" for m in schedule.matrices if m.name in learned]
        return {"core": sweeps + rules}
    families: dict[str, list[str]] = {}
    for mat in schedule.matrices:
        families.setdefault(mat.transpose_of or mat.name, []).append(mat.name)
    shared = {}
    for primary, sweeps in families.items():
        phases = [p for name in sweeps for p in read_in.get(name, ())]
        units = sweeps + ([f"learn {primary}"] if primary in learned else [])
        if len(phases) == len(set(phases)):
            shared[primary] = units
        else:
            shared.update({unit: [unit] for unit in units})
    return shared


def multiplier_count(schedule: Schedule, lanes: int | Mapping[str, int], share: bool = True) -> int:
    """Hard multipliers of a core at ``lanes`` (:func:`resolve_lanes`): a family's units
    (:func:`multiplier_families`, per matrix or one for the core as the setting's pool says)
    share one set when ``share``, else each has its own."""
    counts = resolve_lanes(schedule, lanes)

    def lanes_of(unit: str) -> int:
        return counts[unit.removeprefix("learn ")]

    total = 0
    for units in multiplier_families(schedule, _pooled(schedule, lanes)).values():
        sizes = [lanes_of(u) for u in units]
        total += max(sizes) if share else sum(sizes)
    return total


def _grouped(items, sizes) -> list[tuple[int, int, list[tuple[str, int]]]]:
    """(col0, size, [(group, sign), ...]) for terms sharing matrix columns, first-seen order
    (the grouping the golden model's circuit uses)."""
    grouped: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for name, sign, col0 in items:
        grouped.setdefault((col0, sizes[name]), []).append((name, sign))
    return [(col0, size, parts) for (col0, size), parts in grouped.items()]


class OperandFetch:
    """The spatial core's operands: saturated signed sums of group elements, picked by index
    where a unit reads one column a clock, built into ``m`` over the core's registers
    (``value(group)``: a group's elements). Each sum's saturation flag is kept with the
    moment it counts (``events``: ``(enable, flag)`` pairs for the current counter)."""

    def __init__(self, m: Module, value, width: int) -> None:
        self.m, self.value, self.width = m, value, width
        self.events: list = []

    def signed_sum(self, terms, name: str, enable):
        """``sat(sum(sign * value))`` of ``(value, sign)`` terms; its saturation is counted
        when ``enable``."""
        if len(terms) == 1 and terms[0][1] == 1:
            return terms[0][0]  # a single positive part cannot leave the range
        expression = None
        for value, sign in terms:
            if expression is None:
                expression = value if sign > 0 else -value
            else:
                expression = expression + value if sign > 0 else expression - value
        clamped, flag = saturate(named(self.m, expression, name), self.width)
        self.events.append((enable, flag))
        return clamped

    def combined(self, parts, j: int, enable):
        """``sat(sum(sign * part[j]))``; its saturation is counted when ``enable``."""
        terms = [(self.value(name)[j], sign) for name, sign in parts]
        return self.signed_sum(terms, f"sum_{port_name(parts[0][0])}_{j}", enable)

    def element(self, ranges, columns, index, enable, label: str):
        """``sat(sum(sign * part[c]))`` for the column ``c = columns[index]`` (0 where it is
        ``None``): the parts are picked first, so one subtractor and clamp serve every
        column. ``ranges`` as from :func:`_grouped`; saturation counted when ``enable``."""
        cw = self.width
        pick = Const(0, signed(cw))
        for col0, size, parts in ranges:
            member = [c is not None and col0 <= c < col0 + size for c in columns]
            if not any(member):
                continue
            zero = Const(0, signed(cw))
            terms = [
                (
                    Array(
                        self.value(group)[c - col0] if inside else zero
                        for c, inside in zip(columns, member, strict=True)
                    )[index],
                    sign,
                )
                for group, sign in parts
            ]
            here = Const(1) if all(member) else Array(Const(inside) for inside in member)[index]
            value = self.signed_sum(terms, f"fetch_{label}_{port_name(parts[0][0])}", enable & here)
            pick = value if all(member) else Mux(here, value, pick)
        return pick


class NetworkCore(wiring.Component):
    """The circuit of a compiled schedule, trained one sample at a time.

    Stream a sample's input words into ``load`` (the schedule's input groups in order, e.g.
    ``x+ x- t+ t-``; the count wraps after the last word), pulse ``start``; the core runs
    every tick of the sample and pulses ``sample_done``. ``state_valid`` is high for one clock
    after every tick (longer while ``hold``): then every current, mask, weight and counter
    holds its value at that tick boundary.

    A tick: (first tick of a phase) latched copies into memories; learning, a Hebbian sweep
    per enabled matrix; every active synapse unit sweeps its matrix; every
    population group steps once. A tick that learns nothing or sweeps no matrix skips those
    stages; rules learn at once unless stochastic rounding or one multiplier pool for the core
    makes them take turns. Its length
    in clocks depends on ``lanes``, never on data: :func:`sweep_depths` plus about 4 control
    clocks a tick (28 in a 7-tick backprop sample).

    Parameters
    ----------
    schedule : Schedule
    cfg : Config
    lanes : int or Mapping[str, int]
        Multiply-accumulates per clock in every synapse and Hebbian unit, or per matrix
        (:func:`resolve_lanes`: a matrix, its transposed copy and its learning rule share one
        count), so that the multipliers go where the long sweeps are.
    host_port : bool
        Add the ``host`` port: weight reads and writes and LFSR reseeding between samples.
    debug : bool
        Add the debug read port (simulation and bring-up; costs a read port per memory).
    population_lanes : int or None
        Population steps per clock in every group (``None``: the whole group in one clock).
        Fewer lanes trade clocks per tick for area; results do not change.
    share_multipliers : bool
        A matrix's synapse unit, its copy's and its learning rule multiply in one
        :class:`~hw.multipliers.MultiplierPool` (:func:`multiplier_families`): they never
        multiply at once, so the device's multipliers go two or three times as far. Results
        and clocks do not change.
    word_registers : bool
        Keep a weight memory that is one word deep in flip-flops, not block RAM
        (:class:`~hw.synapse.SynapseUnit` ``registers``; the ECP5 boards set it: the iris
        core at W1=40,W2=27 takes no DP16KD instead of 48, and 10,801 LUT4 instead of 12,638).
        Results and clocks do not change.

    Attributes
    ----------
    load : In(stream.Signature(signed(current_width)))
        Input words; ``ready`` is low while a sample runs.
    start : In(1)
    running, sample_done, state_valid : Out(1)
    sat_current, sat_weight, sat_copy : Out(64)
        The golden model's counters (32-bit, saturating at their maximum).
    samples : Out(32)
    hold : In(1)
        Keep the core at the current tick boundary (``state_valid`` stays high).
    output : Out(ArrayLayout(signed(current_width + 1), readout size))
        The last sample's readout ``plus - minus``, latched when the golden model reads it.
    host : In(HostPort)
        (``host_port=True``) Weights and the LFSR from outside, between samples.
    debug_addr : In(range(state_words)), debug_data : Out(signed(64))
        Any state word, in the golden trace's order (currents, masks, weights, counters,
        LFSR), one clock after its address.
    """

    #: ``load`` writes the state directly: only while idle.
    loads_while_running = False

    def __init__(
        self,
        schedule: Schedule,
        cfg: Config,
        lanes: int | Mapping[str, int] = 1,
        debug: bool = True,
        *,
        population_lanes: int | None = None,
        host_port: bool = False,
        share_multipliers: bool = True,
        word_registers: bool = False,
    ) -> None:
        self.schedule, self.cfg, self.debug = schedule, cfg, debug
        self.sizes = {g.name: g.size for g in schedule.groups}  # elements of every group
        self.matrix_lanes = resolve_lanes(schedule, lanes)
        self.lanes = max(self.matrix_lanes.values())  # the widest unit
        if population_lanes is not None and population_lanes < 1:
            raise ValueError(f"population_lanes must be >= 1 or None, got {population_lanes}")
        self.population_lanes = population_lanes
        self.host_port = host_port
        self.word_registers = word_registers
        #: "core": one pool for every unit, the learning rules taking turns.
        self.pool = _pooled(schedule, lanes) if share_multipliers else "matrix"
        self.families = {
            primary: units
            for primary, units in multiplier_families(schedule, self.pool).items()
            if share_multipliers and len(units) > 1
        }
        shared = {unit for units in self.families.values() for unit in units}
        self.layout = StateLayout.of(schedule)
        self.state_words = (
            self.layout.n_currents + self.layout.n_masks + self.layout.n_weights + len(COUNTERS) + 1
        )
        golden = Circuit(schedule, cfg, FIXED)  # initial weights and constants: one home
        self._initial_weights = {k: v.copy() for k, v in golden.weights.items()}
        self._constants = {name: golden.group(name).copy() for name, _ in schedule.constants}
        self.input_groups = list(schedule.inputs)
        self.input_size = sum(schedule.group(n).size for n in self.input_groups)
        cw, ww = cfg.current_width, cfg.weight_width
        readout = schedule.readout
        self.output_size = schedule.group(readout.plus).size if readout else 0
        host_ports = {"host": In(HostPort(self.layout.n_weights, ww))}
        super().__init__(
            {
                **(host_ports if host_port else {}),
                **core_ports(cw, self.output_size, self.state_words, debug),
            }
        )
        self._build(shared)

    # -- structure: every block the schedule needs --------------------------------------------

    def synapse_class(self, matrix: str) -> type[SynapseUnit]:
        """The synapse unit of ``matrix`` (the tests' broken cores swap one in a subclass)."""
        return SynapseUnit

    def _build(self, shared: set[str]) -> None:
        s, cfg = self.schedule, self.cfg
        arith = Arithmetic.of(cfg)  # what the blocks take of the configuration
        self.sequencer = GatingSequencer(s, cfg)
        self.populations = {
            g.name: PopulationAccumulator(
                arith, g.size, min(g.size, self.population_lanes or g.size)
            )
            for g in s.groups
            if g.kind == POP
        }
        self.held = {
            g.name: Signal(
                data.ArrayLayout(signed(cfg.current_width), g.size),
                name=f"held_{port_name(g.name)}",
                init=[int(v) for v in self._constants.get(g.name, np.zeros(g.size, np.int64))],
            )
            for g in s.groups
            if g.kind == HELD
        }
        # Each matrix is read by exactly one transfer of the schedule.
        self.uses: dict[str, tuple[int, object]] = {}
        for index, phase in enumerate(s.phases):
            for tr in phase.transfers:
                matrices = {t.matrix for t in tr.terms}
                if None in matrices and len(matrices) > 1:
                    raise NotImplementedError("a transfer mixing identity and matrix terms")
                if len(matrices - {None}) > 1:
                    raise NotImplementedError("a transfer through two matrices")
                (matrix,) = matrices
                if matrix is not None:
                    if matrix in self.uses:
                        raise NotImplementedError(f"matrix {matrix} is read by two transfers")
                    self.uses[matrix] = (index, tr)
        self.synapses = {}
        for mat in s.matrices:
            geo = matrix_layout(s, mat.name, self.matrix_lanes[mat.name], cfg.weight_width)
            self.synapses[mat.name] = self.synapse_class(mat.name)(
                arith,
                mat.rows,
                mat.cols,
                self.matrix_lanes[mat.name],
                layout=geo.layout,
                stride=geo.stride,
                init=self._initial_weights[mat.name],
                debug=self.debug,
                fetch=True,
                external_multipliers=mat.name in shared,
                registers=self.word_registers and geo.depth == 1,
            )
        self.learns = list(
            dict.fromkeys(ln for ph in s.phases for ln in ph.learns)
        )  # schedule order = LFSR order
        self.hebbians = {
            ln.matrix: HebbianUnit(
                arith,
                s.matrix(ln.matrix).rows,
                s.matrix(ln.matrix).cols,
                self.matrix_lanes[ln.matrix],
                copy_rows=s.matrix(ln.copy).rows if ln.copy else None,
                rule=ln.rule,
                shared_lfsr=True,
                fetch=True,
                external_multipliers=f"learn {ln.matrix}" in shared,
            )
            for ln in self.learns
        }
        # Shared by the learning rules in turn: as many steps a clock as the widest draws.
        widest = max((self.matrix_lanes[ln.matrix] for ln in self.learns), default=1)
        self.lfsr = MultiStepLfsr(cfg.lfsr_seed, widest)

    def value(self, name: str):
        """The current values of a group (population currents or held registers)."""
        if name in self.populations:
            return self.populations[name].currents
        return self.held[name]

    # -- elaboration ----------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        m.submodules.sequencer = self.sequencer
        m.submodules.lfsr = self.lfsr
        for name, unit in self.populations.items():
            m.submodules[f"pop_{port_name(name)}"] = unit
        for name, unit in self.synapses.items():
            m.submodules[f"syn_{name}"] = unit
        for name, unit in self.hebbians.items():
            m.submodules[f"learn_{name}"] = unit
        self._multiplier_pools(m)
        operands = OperandFetch(m, self.value, self.cfg.current_width)
        self._inputs(m)
        # Rules that draw no random bits learn at once, as nothing orders them; with
        # stochastic rounding they take turns, drawing the shared LFSR's numbers in schedule
        # order, and so they do on one multiplier pool for the core.
        together = self.cfg.rounding != "stochastic" and self.pool != "core"
        m.submodules.tick = tick = TickControl(len(self.learns), in_turns=not together)
        # Which matrices are swept in the sequencer's phase.
        phases = range(len(self.schedule.phases))
        active = {
            name: Array(Const(self.uses.get(name, (None,))[0] == p) for p in phases)[
                self.sequencer.phase
            ]
            for name in self.synapses
        }
        self._sweeps(m, operands, tick, active)
        self._drives(m, self._identity_transfers(m, operands, tick), tick)
        learn_enabled, drivers = self._learning(m, operands, tick, together)
        self._counters(m, operands.events)
        self._tick_control(m, tick, active, learn_enabled, together)
        if self.host_port:
            self._host_port(m, drivers)
        else:
            for matrix, port in drivers.items():
                wiring.connect(m, port, self.synapses[matrix].learn)
        self._readout(m)
        if self.debug:
            self._debug_port(m)
        return m

    def _inputs(self, m: Module) -> None:
        """The load of a sample's input words; the mask captures' inputs."""
        s, seq = self.schedule, self.sequencer
        sizes = self.sizes
        # Input words stream into the input groups, in order.
        m.submodules.loader = loader = InputLoader(self.input_size, self.cfg.current_width)
        wiring.connect(m, wiring.flipped(self.load), loader.load)
        m.d.comb += loader.running.eq(self.running)
        inputs = [(name, j) for name in self.input_groups for j in range(sizes[name])]
        for k, (name, j) in enumerate(inputs):
            with m.If(loader.write[k]):
                m.d.sync += self.held[name][j].eq(loader.word)

        # Mask capture inputs.
        for phase in s.phases:
            for cap in phase.captures:
                port = getattr(seq.capture, cap.mask)
                for j in range(sizes[cap.plus]):
                    m.d.comb += [
                        port.plus[j].eq(self.value(cap.plus)[j]),
                        port.minus[j].eq(self.value(cap.minus)[j]),
                    ]

    def _sweeps(self, m: Module, operands: OperandFetch, tick: TickControl, active) -> None:
        """Each synapse unit's source elements, gate and start."""
        sizes = self.sizes
        seq = self.sequencer
        # Synapse sources and gates.
        for name, unit in self.synapses.items():
            if name not in self.uses:
                continue
            index, tr = self.uses[name]
            ranges = _grouped(((t.source, t.sign, t.col0) for t in tr.terms), sizes)
            # Each lane's element is picked from the groups first, then its PMPY difference
            # formed once: a subtractor and a clamp per lane, not per source element. Its
            # saturation is counted at the element's first read of the sweep (the sweep runs
            # once in each tick of its phase, while the sources hold still).
            for lane in range(unit.fetch_lanes):
                value = operands.element(
                    ranges,
                    unit.lane_columns(lane),
                    unit.fetch_inner,
                    unit.fetch_first,
                    f"{name}_{lane}",
                )
                m.d.comb += unit.fetched[lane].eq(value)
            m.d.comb += [
                unit.gate.eq(getattr(seq.gates, port_name(tr.plus))),
                unit.start.eq(tick.synapse_start & active[name]),
            ]

    def _identity_transfers(self, m: Module, operands: OperandFetch, tick: TickControl) -> dict:
        """z = sat(sum of signed parts) of every transfer without a matrix, by transfer."""
        s, cw = self.schedule, self.cfg.current_width
        sizes = self.sizes
        phase_index = self.sequencer.phase

        # Identity transfers: z = sat(sum of signed parts), once per transfer. A sum of
        # several parts is latched when the step starts (its sources hold still until the
        # populations step, a clock later): the sum and its clamp then sit before a register,
        # not in front of the population step.
        def latched(parts, j, enable):
            value = operands.combined(parts, j, enable)
            if len(parts) == 1 and parts[0][1] == 1:
                return value  # a copy of a current: nothing to latch
            z = Signal(signed(cw), name=f"z_{port_name(parts[0][0])}_{j}")
            with m.If(enable):
                m.d.sync += z.eq(value)
            return z

        identity_z = {}
        for index, phase in enumerate(s.phases):
            for tr in phase.transfers:
                if tr.terms[0].matrix is None:
                    enable = tick.step_tick & (phase_index == index)
                    terms = ((t.source, t.sign, t.col0) for t in tr.terms)
                    identity_z[id(tr)] = [
                        latched(parts, j, enable)
                        for _, size, parts in _grouped(terms, sizes)
                        for j in range(size)
                    ]
        return identity_z

    def _drives(self, m: Module, identity_z: dict, tick: TickControl) -> None:
        """Each population's drive (the transfer that targets it in the phase), gate, clear
        and step."""
        s, cw = self.schedule, self.cfg.current_width
        sizes = self.sizes
        control, phase_index = self.sequencer.control, self.sequencer.phase
        # Population drives: per group, the transfer that targets it in each phase.
        for name, unit in self.populations.items():
            options = []
            for phase in s.phases:
                drive = None
                for tr in phase.transfers:
                    if name not in (tr.plus, tr.minus):
                        continue
                    half = "plus" if name == tr.plus else "minus"
                    matrix = tr.terms[0].matrix
                    if matrix is not None:
                        drive = getattr(self.synapses[matrix], half)
                    else:
                        drive = [
                            Mux(is_positive(v), v, 0)
                            if half == "plus"
                            else Mux(is_negative(v), -v, 0)
                            for v in identity_z[id(tr)]
                        ]
                options.append(drive)
            g = self.sequencer.word.pops.index(name)
            # A group's gate opens only in the phases that target it, so the drive of any
            # other phase is never seen: select among the targeting phases only (a single
            # one needs no multiplexer at all).
            driving = [(p, opt) for p, opt in enumerate(options) if opt is not None]
            for j in range(sizes[name]):
                pick = Const(0, unsigned(cw - 1))
                for k, (p, opt) in enumerate(driving):
                    pick = opt[j] if k == 0 else Mux(phase_index == p, opt[j], pick)
                m.d.comb += unit.drive[j].eq(pick)
            m.d.comb += [
                unit.gate.eq(getattr(self.sequencer.gates, port_name(name))),
                unit.clear.eq(control.clear[g] & tick.first),
                unit.hold.eq(0),
                unit.held_gain.eq(control.held_gain[g]),
                unit.tick.eq(tick.step_tick),
            ]

    def _learning(self, m: Module, operands: OperandFetch, tick: TickControl, together: bool):
        """Each rule's post and pre elements, start and random numbers; the covariance rule's
        rate; the LFSR's advance. Returns each rule's enable and ``{matrix: LearnPort}``, the
        port that writes each learned matrix while the core runs."""
        s, cfg, seq = self.schedule, self.cfg, self.sequencer
        sizes = self.sizes
        control = seq.control
        # Learning: post and pre elements, memory ports, the shared LFSR.
        learn_enabled = [
            control.learn[self.sequencer.word.learns.index(ln.matrix)] for ln in self.learns
        ]
        drivers = {}  # matrix -> the LearnPort that writes it while the core runs
        for k, ln in enumerate(self.learns):
            unit = self.hebbians[ln.matrix]
            enable = tick.learn_start & (learn_enabled[k] if together else tick.learn_target == k)
            # post[r] and pre[c] by index, as the synapse units fetch their sources; each
            # element's saturation counted at its first use (chunk 0 of its row, row 0).
            rows = s.matrix(ln.matrix).rows
            post_parts = [(ln.post_plus, 1), (ln.post_minus, -1)]
            for j in range(unit.geometry.span):
                m.d.comb += unit.fetched_post[j].eq(
                    operands.element(
                        [(0, rows, post_parts)],
                        unit.post_rows(j),
                        unit.fetch_row,
                        unit.fetch_valid & ~unit.fetch_chunk.any(),
                        f"{ln.matrix}_post{j}",
                    )
                )
            pre_ranges = _grouped(((p.source, p.sign, p.col0) for p in ln.pre), sizes)
            for e in range(unit.geometry.segment):
                m.d.comb += unit.fetched_pre[e].eq(
                    operands.element(
                        pre_ranges,
                        unit.lane_columns(e),
                        unit.fetch_chunk,
                        unit.fetch_valid & ~unit.fetch_row.any(),
                        f"{ln.matrix}_pre{e}",
                    )
                )
            drivers[ln.matrix] = unit.w
            if ln.copy:
                drivers[ln.copy] = unit.wt
            m.d.comb += [
                unit.start.eq(enable),
                *(unit.random_ahead[i].eq(self.lfsr.ahead[i]) for i in range(unit.lanes)),
            ]
        if any(ln.rule == "covariance" for ln in self.learns):
            # eta_t = 2^-floor(log2 t) for the t-th sample (1-based), floored at 2^-shift.
            t = Signal(33)
            log2 = Signal(range(34))
            m.d.comb += t.eq(seq.samples + 1)
            for bit in range(33):
                with m.If(t[bit]):
                    m.d.comb += log2.eq(bit)
            limit = cfg.learning_rate_shift
            for ln in self.learns:
                if ln.rule == "covariance":
                    m.d.comb += self.hebbians[ln.matrix].rate_shift.eq(
                        Mux(log2 > limit, limit, log2)
                    )
        if self.learns:
            # Rules draw one after another (a rule starts when the one before names its last
            # word, and draws two clocks after naming), so at most one advances at a time.
            m.d.comb += self.lfsr.advance.eq(
                balanced_sum([u.random_advance for u in self.hebbians.values()])
            )
        return learn_enabled, drivers

    def _counters(self, m: Module, events: list) -> None:
        """The three saturation counters (:class:`~hw.spatial_control.SaturationCounter`);
        ``events``: the operand fetch's ``(enable, flag)`` pairs."""
        # Counters: one shared saturating counter per kind sums every block's events of
        # the clock (cheaper than a counter per block summed afterwards). Events of fetched
        # elements, identity sums, synapse outputs and learning are registered where they
        # arise, so the chip-wide sums start at flip-flops (on the routed digits system their
        # routing was the critical path). They all come two clocks or more before the tick's
        # boundary; the populations' come in the last clock and go straight in.
        learners = list(self.hebbians.values())
        early = [Mux(enable, flag, 0) for enable, flag in events]
        early += [u.sat_events for u in self.synapses.values()]
        late = [u.sat_events for u in self.populations.values()]
        kinds = (
            ("current", self.sat_current, early, late),
            ("weight", self.sat_weight, [u.sat_events for u in learners], []),
            ("copy", self.sat_copy, [u.sat_copy_events for u in learners], []),
        )
        for kind, output, arising, last in kinds:
            widths = [[len(v) for v in values] for values in (arising, last)]
            counter = SaturationCounter(*widths, COUNTER_WIDTH)
            m.submodules[f"sat_{kind}"] = counter
            for port, values in ((counter.early, arising), (counter.late, last)):
                m.d.comb += [port[f"e{k}"].eq(v) for k, v in enumerate(values)]
            m.d.comb += output.eq(counter.count)

    def _tick_control(
        self, m: Module, tick: TickControl, active, learn_enabled: list, together: bool
    ) -> None:
        """What the tick control sees of the units and the sequencer; the copies it issues;
        the rules' turns."""
        seq, control = self.sequencer, self.sequencer.control
        learn_index = tick.learn_index
        m.d.comb += [
            self.samples.eq(seq.samples),
            seq.start.eq(self.start),
            self.running.eq(seq.running),
            self.sample_done.eq(seq.sample_done),
        ]

        copies = self.sequencer.word.copies
        learn_units = list(self.hebbians.values())
        # Ticks that learn nothing or sweep no matrix skip those states (most ticks do one
        # or neither): control clocks are a large share of a sample at many lanes.
        learns_now = Signal()
        sweeps_now = Signal()
        m.d.comb += sweeps_now.eq(Cat(active[name] for name in self.uses).any())
        if self.learns:
            m.d.comb += learns_now.eq(seq.first_tick & Cat(learn_enabled).any())
        copying = Signal()  # this tick writes copies (its phase's first tick)
        if copies:
            m.d.comb += copying.eq(
                seq.first_tick & Cat(control.copy[k] for k in range(len(copies))).any()
            )
        with m.If(tick.issuing & seq.first_tick):
            for k, cp in enumerate(copies):
                with m.If(control.copy[k]):
                    m.d.sync += self.held[cp.target].eq(self.value(cp.source))

        # In turns, each rule starts (and names its first word) in the clock after the one
        # before names its last (the multipliers are free from then on): the first enabled
        # rule a clock after the issue, then the next enabled one after each.
        def first_enabled(after: int):
            """(exists, index) of the first enabled rule after index ``after``."""
            exists, index = Signal(name=f"learn_after{after + 1}"), Signal.like(learn_index)
            for j in reversed(range(after + 1, len(self.learns))):
                with m.If(learn_enabled[j]):
                    m.d.comb += [exists.eq(1), index.eq(j)]
            return exists, index

        if learn_units and not together:
            # The next rule names its first word in the clock after the last one's (when the
            # multipliers are free of the rule before); a one-word rule ends in the clock it
            # starts, so this is watched in every state.
            chain = [first_enabled(k) for k in range(len(self.learns))]
            ending = Array(u.ending for u in learn_units)[learn_index]
            more = Array(exists for exists, _ in chain)[learn_index]
            m.d.sync += tick.handoff.eq(ending & more)
            m.d.comb += [
                tick.start_at.eq(first_enabled(-1)[1]),
                tick.after.eq(Array(index for _, index in chain)[learn_index]),
            ]
        m.d.comb += [
            tick.tick_valid.eq(seq.tick_valid),
            tick.first_tick.eq(seq.first_tick),
            tick.learns_now.eq(learns_now),
            tick.sweeps_now.eq(sweeps_now),
            tick.copying.eq(copying),
            tick.rules_idle.eq(Cat(~u.busy for u in learn_units).all()),
            tick.rules_naming.eq(Cat(u.issuing for u in learn_units).any()),
            tick.sweeps_finished.eq(Cat(~u.busy | u.done for u in self.synapses.values()).all()),
            tick.steps_finished.eq(Cat(~u.busy | u.done for u in self.populations.values()).all()),
            tick.hold.eq(self.hold),
            seq.tick_done.eq(tick.tick_done),
            seq.pause.eq(tick.pause),
            self.state_valid.eq(tick.state_valid),
        ]

    def _multiplier_pools(self, m: Module) -> None:
        """One :class:`MultiplierPool` per family of units that share multipliers."""
        cw, ww = self.cfg.current_width, self.cfg.weight_width
        for family, names in self.families.items():
            units = [
                self.hebbians[n[len("learn ") :]] if n.startswith("learn ") else self.synapses[n]
                for n in names
            ]
            widths = [unit.lanes for unit in units]
            pool = MultiplierPool(len(units), max(widths), max(cw, ww), cw, user_lanes=widths)
            m.submodules[f"multipliers_{family}"] = pool
            for k, unit in enumerate(units):
                for lane in range(unit.lanes):
                    m.d.comb += [
                        pool.a[k][lane].eq(unit.mul_a[lane]),
                        pool.b[k][lane].eq(unit.mul_b[lane]),
                        # Exact: each user's product fits its own width.
                        unit.mul_product[lane].eq(pool.product[lane]),
                    ]

    def _readout(self, m: Module) -> None:
        """``output``: the readout ``plus - minus`` latched when the golden model reads it
        (at the start of its phase, before that phase's first tick changes anything)."""
        r = self.schedule.readout
        seq = self.sequencer
        if r is None:
            return
        plus = self.value(r.plus)
        minus = self.value(r.minus) if r.minus is not None else None
        if r.phase == len(self.schedule.phases):
            moment = seq.sample_done
        else:
            moment = seq.tick_valid & seq.first_tick & (seq.phase == r.phase)
        with m.If(moment):
            for j in range(len(self.output)):
                value = plus[j] - minus[j] if minus is not None else plus[j]
                m.d.sync += self.output[j].eq(value)

    def weight_spots(self) -> list[tuple[str, int, int, str | None, int, int]]:
        """For every weight in trace order: ``(matrix, address, lane, copy, address, lane)``
        of the word that holds it and of its transposed copy (:func:`hw.host_port.weight_spots`)."""
        geometry = {name: unit.geometry for name, unit in self.synapses.items()}
        return weight_spots(self.schedule.matrices, geometry)

    def _host_port(self, m: Module, drivers: dict) -> None:
        """The host's weight access (:class:`~hw.spatial_control.HostWeightAccess`) between
        the learning rules and the weight memories, and the LFSR's seed."""
        geometry = {name: unit.geometry for name, unit in self.synapses.items()}
        m.submodules.host_access = access = HostWeightAccess(
            self.schedule.matrices, geometry, set(drivers)
        )
        wiring.connect(m, wiring.flipped(self.host), access.host)
        for name, unit in self.synapses.items():
            wiring.connect(m, getattr(access, f"memory_{port_name(name)}"), unit.learn)
        for name, rule in drivers.items():
            wiring.connect(m, rule, getattr(access, f"rule_{port_name(name)}"))
        m.d.comb += [
            access.running.eq(self.running),
            access.start.eq(self.start),
            self.lfsr.load_en.eq(access.lfsr_load),
            self.lfsr.load_value.eq(access.lfsr_seed),
            access.lfsr_state.eq(self.lfsr.state),
        ]

    def _debug_port(self, m: Module) -> None:
        """``debug_data`` one clock after ``debug_addr`` (:class:`~hw.spatial_control.DebugPort`):
        registers are muxed from the registered address; weights come through each memory's
        debug read port."""
        s = self.schedule
        words = [self.value(g.name)[j] for g in s.groups for j in range(g.size)]
        words += [
            getattr(self.sequencer.masks, name)[j] for name, size in s.masks for j in range(size)
        ]
        counters = [self.sat_current, self.sat_weight, self.sat_copy, self.samples, self.lfsr.state]
        weights = []
        for matrix in s.matrices:
            geo = self.synapses[matrix.name].geometry
            spots = [geo.locate(r, c) for r in range(matrix.rows) for c in range(matrix.cols)]
            weights.append((geo, spots))
        m.submodules.debug = port = DebugPort(
            len(words), self.cfg.current_width, weights, len(counters)
        )
        m.d.comb += [
            port.addr.eq(self.debug_addr),
            self.debug_data.eq(port.data),
            *(port.register[j].eq(word) for j, word in enumerate(words)),
            *(port.counter[j].eq(value) for j, value in enumerate(counters)),
        ]
        for k, matrix in enumerate(s.matrices):
            unit = self.synapses[matrix.name]
            m.d.comb += [
                unit.debug_raddr.eq(getattr(port, f"weight_addr{k}")),
                getattr(port, f"weight_data{k}").eq(unit.debug_rdata),
            ]
