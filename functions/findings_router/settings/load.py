"""Reading and validating policy files: YAML with file:line errors, the checks across environments, loading."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from findings_router.settings.schema import PRIMARY_NOTIFIER, Policy

if TYPE_CHECKING:
    import yaml

Loc = tuple[str | int, ...]


ExpiredSuppressions = Literal["error", "warning"]


# A suppression that expires within this many days (or less) is a warning: it is about to stop applying.
EXPIRY_WARNING_DAYS = 14


POLICY_SUFFIXES = (".yaml", ".yml")


_MERGE_TAG = "tag:yaml.org,2002:merge"


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def format_loc(loc: Loc) -> str:
    """`rules[1].match.severity[0]` for ("rules", 1, "match", "severity", 0); `(top level)` for ()."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@dataclass(frozen=True)
class FieldProblem:
    """What a check finds wrong with a field of a valid `Policy`; validation adds the file and the line."""

    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{format_loc(self.loc)}: {self.message}"


# A check of a valid policy, e.g. infra/derived.deployment_checks (settings AWS would reject at deploy time).
PolicyCheck = Callable[[Policy], Iterable[FieldProblem]]


@dataclass(frozen=True)
class Problem:
    """One problem of a policy file, printed as ``file:line: field: message`` (``… field: warning: message``).

    `line` is None where there is none (a packaged JSON policy, a file that is not a policy); `field` is "" where no
    field is concerned (YAML syntax).
    """

    source: str
    line: int | None
    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {'warning: ' if self.warning else ''}{self.message}"


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one policy file. `policy` is None when the file is not a valid `Policy` (then
    `errors` says why); a valid policy can still have errors of the checks made on it (deployment, expiry)."""

    source: str
    policy: Policy | None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    lines: Mapping[Loc, int] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, else of its nearest parent in the file; None for a file without lines (JSON)."""
        if not self.lines:
            return None
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def problem(self, loc: Loc, message: str, *, warning: bool = False) -> Problem:
        return Problem(self.source, self.line_of(loc), format_loc(loc), message, warning)

    def raise_for_errors(self) -> Policy:
        """The policy; `PolicyError` listing every error if there is one."""
        if self.errors or self.policy is None:
            raise PolicyError(self.source, [str(p) for p in self.errors])
        return self.policy


@dataclass(frozen=True)
class DirValidation:
    """The outcome of validating a config directory: every `<env>.yaml` / `<env>.yml` in it, and across them."""

    config_dir: Path
    files: dict[Path, Validation] = dataclasses.field(default_factory=dict)
    # Warnings about entries of the directory that are not policy files (dotfiles are ignored).
    other: tuple[Problem, ...] = ()
    # Not a directory, or no policy file in it: nothing was validated (the CLI's exit status 2).
    usage_error: str | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for v in self.files.values() for p in v.errors]

    @property
    def warnings(self) -> list[Problem]:
        return [*self.other, *(p for v in self.files.values() for p in v.warnings)]

    @property
    def ok(self) -> bool:
        return self.usage_error is None and not self.errors

    @property
    def policies(self) -> dict[str, Policy]:
        """The environments whose files passed every check, by environment (= file stem)."""
        return {v.policy.environment: v.policy for v in self.files.values() if v.ok and v.policy is not None}

    def raise_for_errors(self) -> dict[str, Policy]:
        """`policies`; `PolicyError` listing every error if there is one."""
        if self.usage_error is not None:
            raise PolicyError(str(self.config_dir), [self.usage_error])
        if self.errors:
            raise PolicyError(str(self.config_dir), [str(p) for p in self.errors])
        return self.policies


class PolicyError(ValueError):
    """An invalid policy file. The message lists every problem as ``file:line: field: what is wrong``."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


class _Unreadable:
    """Stands for a value the YAML constructor could not build (reported as a problem of its own)."""

    def __repr__(self) -> str:
        return "<unreadable>"


_UNREADABLE = _Unreadable()


@dataclass
class YamlReport:
    """What `policy_yaml_loader()` found while constructing a document (the loader raises on the first, unless given
    a report to collect them all in)."""

    duplicate_keys: list[tuple[yaml.Node, yaml.Node, object]] = dataclasses.field(
        default_factory=list
    )  # first, again, key
    unreadable: list[tuple[yaml.Node, BaseException]] = dataclasses.field(default_factory=list)


@functools.cache
def policy_yaml_loader() -> type[yaml.SafeLoader]:
    """A `yaml.SafeLoader` that refuses duplicate mapping keys (PyYAML keeps the last silently, so an appended
    `default_action: page` would win) and names the node of a value it cannot construct (`2027-13-31` raises a bare
    ValueError in PyYAML). Built on first use: the functions read their policy as JSON and never import yaml."""
    import yaml

    class PolicyYamlLoader(yaml.SafeLoader):
        def __init__(self, stream: str, report: YamlReport | None = None) -> None:
            super().__init__(stream)
            self._collect = report is not None
            self.report = report if report is not None else YamlReport()

        def construct_document(self, node: yaml.Node) -> Any:
            data = super().construct_document(node)
            if not self._collect:
                _raise_first(self.report)
            return data

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            deep_before = self.deep_construct
            try:
                return super().construct_object(node, deep=deep)
            except RecursionError:
                raise
            except Exception as exc:  # any constructor's error: reported with this node's file:line and field
                self.recursive_objects.pop(node, None)
                self.deep_construct = deep_before
                self.constructed_objects[node] = _UNREADABLE
                self.report.unreadable.append((node, exc))
                return _UNREADABLE

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):
                _note_duplicate_keys(node, lambda key_node: self.construct_object(key_node, deep=deep), self.report)
            return super().construct_mapping(node, deep=deep)

    return PolicyYamlLoader


def _raise_first(report: YamlReport) -> None:
    """Raise the first problem `report` holds as PyYAML's own error, at its node (a loader that does not collect)."""
    import yaml

    if report.duplicate_keys:
        first, again, key = report.duplicate_keys[0]
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate key {key!r} (first at line {first.start_mark.line + 1})", again.start_mark
        )
    if report.unreadable:
        bad, exc = report.unreadable[0]
        raise yaml.constructor.ConstructorError(None, None, _unreadable_message(bad, exc), bad.start_mark)


def _note_duplicate_keys(node: yaml.MappingNode, construct: Callable[[yaml.Node], object], report: YamlReport) -> None:
    """Add each key that `node` repeats to `report` (with the first occurrence), constructing keys with `construct`.
    Before merge keys (`<<: *base`) are flattened in: a key that overrides a merged one is no duplicate."""
    first: dict[object, yaml.Node] = {}
    for key_node, _value in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = construct(key_node)
        if key is _UNREADABLE or not isinstance(key, Hashable):
            continue  # reported already, or by PyYAML (unhashable key)
        if key in first:
            report.duplicate_keys.append((first[key], key_node, key))
        else:
            first[key] = key_node


def _unreadable_message(node: yaml.Node, exc: BaseException) -> str:
    import yaml

    value = node.value if isinstance(node, yaml.ScalarNode) else None
    if node.tag == _TIMESTAMP_TAG and isinstance(exc, ValueError):
        kind = "date" if re.fullmatch(r"\d{4}-\d\d?-\d\d?", str(value)) else "timestamp"
        return f"not a valid {kind}: {value}"
    if isinstance(exc, yaml.MarkedYAMLError):
        return exc.problem or exc.context or "cannot read this value"
    tag = node.tag.rsplit(":", 1)[-1]
    shown = f" {value!r}" if value is not None else ""
    return f"cannot read{shown} as {tag}: {exc}"


@dataclass
class _Index:
    """Where each part of a composed YAML document is: lines by field path, field paths by node and by position."""

    lines: dict[Loc, int] = dataclasses.field(default_factory=dict)
    by_node: dict[int, Loc] = dataclasses.field(default_factory=dict)
    by_position: dict[tuple[int, int], Loc] = dataclasses.field(default_factory=dict)

    def add(self, node: yaml.Node, loc: Loc) -> None:
        self.by_node.setdefault(id(node), loc)
        self.by_position.setdefault((node.start_mark.line, node.start_mark.column), loc)

    def walk(self, node: yaml.Node, loc: Loc = (), seen: set[int] | None = None) -> None:
        import yaml

        seen = set() if seen is None else seen
        self.lines[loc] = node.start_mark.line + 1
        self.add(node, loc)
        if id(node) in seen:  # an alias of a node indexed already (possibly of itself)
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # a list or mapping as key: PyYAML refuses it
                    self.add(key_node, loc)
                    continue
                key = key_node.value
                self.walk(value_node, (*loc, key), seen)
                # The key's line, also for a value that starts on the next line (a nested mapping or list).
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                self.add(key_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*loc, i), seen)


def _yaml_problem(source: str, text: str, exc: Exception, index: _Index | None) -> Problem:
    """A problem PyYAML raised: file:line (and the field when the mark is on a known node), in one line of text."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        what = exc.problem or exc.context or "not valid YAML"
        if exc.problem and exc.context:
            what += f" ({exc.context})"
    elif isinstance(exc, RecursionError):
        what = "nested too deeply"
    elif isinstance(exc, yaml.reader.ReaderError):
        what = f"character #x{exc.character:04x} is not allowed" if isinstance(exc.character, int) else str(exc)
    else:
        what = " ".join(str(exc).split())
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        line = mark.line + 1
        loc = index.by_position.get((mark.line, mark.column)) if index is not None else None
        if loc is not None:
            return Problem(source, line, format_loc(loc), what)
    else:
        position = getattr(exc, "position", None)  # yaml.reader.ReaderError: a character offset
        line = text[:position].count("\n") + 1 if isinstance(position, int) else 1
    return Problem(source, line, "", f"not valid YAML: {what}")


def _read_yaml(text: str, source: str) -> tuple[Any, _Index, list[Problem]]:
    """The document's data and index, or the problems that keep it from being read: YAML syntax, duplicate keys,
    values no constructor can build. One parse: the composed node gives the lines, then becomes the data."""
    import yaml

    index = _Index()
    report = YamlReport()
    try:
        loader = policy_yaml_loader()(text, report)  # type: ignore[call-arg]
    except yaml.YAMLError as exc:  # the reader checks every character first
        return None, index, [_yaml_problem(source, text, exc, None)]
    try:
        try:
            node = loader.get_single_node()
        except (yaml.YAMLError, RecursionError) as exc:
            return None, index, [_yaml_problem(source, text, exc, None)]
        if node is None:
            return None, index, []
        index.walk(node)
        try:
            data = loader.construct_document(node)
        except Exception as exc:  # an unhashable key, a bad merge (`<<`): PyYAML stops at the first
            return None, index, [_yaml_problem(source, text, exc, index)]
    finally:
        loader.dispose()
    problems = [
        Problem(
            source,
            again.start_mark.line + 1,
            format_loc(index.by_node.get(id(again), ())),
            f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
        )
        for first, again, key in report.duplicate_keys
    ]
    problems += [
        Problem(
            source, bad.start_mark.line + 1, format_loc(index.by_node.get(id(bad), ())), _unreadable_message(bad, exc)
        )
        for bad, exc in report.unreadable
    ]
    problems.sort(key=lambda p: p.line or 0)
    return data, index, problems


def _field_path(err: ErrorDetails) -> Loc:
    # pydantic adds the union/function branch to loc (e.g. 'function-after[...]'); keep real path parts.
    return tuple(p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(("function-", "list[")))


def _model_problems(exc: ValidationError, where: Validation) -> tuple[Problem, ...]:
    return tuple(where.problem(_field_path(err), err["msg"]) for err in exc.errors())


def suppression_expiry(
    policy: Policy, today: dt.date, *, expired_suppressions: ExpiredSuppressions = "error"
) -> list[tuple[FieldProblem, bool]]:
    """Suppressions past their `expires` date (an error, or a warning with `expired_suppressions="warning"`) and those
    expiring within `EXPIRY_WARNING_DAYS` (a warning), as (problem, is_warning). A suppression applies through its
    `expires` day (UTC)."""
    found = []
    for i, suppression in enumerate(policy.suppressions):
        if suppression.expires is None:
            continue
        loc: Loc = ("suppressions", i, "expires")
        left = (suppression.expires - today).days
        if left < 0:
            ago = -left
            found.append(
                (
                    FieldProblem(
                        loc,
                        f"suppression {suppression.name!r} expired on {suppression.expires} "
                        f"({ago} day{'s' if ago != 1 else ''} ago) and no longer applies: renew it after review, or "
                        "remove it",
                    ),
                    expired_suppressions == "warning",
                )
            )
        elif left <= EXPIRY_WARNING_DAYS:
            when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
            found.append(
                (
                    FieldProblem(
                        loc,
                        f"suppression {suppression.name!r} expires {when} ({suppression.expires}): renew it after "
                        "review, or let it lapse",
                    ),
                    True,
                )
            )
    return found


def notifier_references(policy: Policy) -> list[FieldProblem]:
    """Every `notify` names a configured notifier, and no notifier takes the primary one's name."""
    known = {PRIMARY_NOTIFIER, *policy.notifiers}
    listed = ", ".join(sorted(known))
    problems = [
        FieldProblem(("notifiers", PRIMARY_NOTIFIER), f"{PRIMARY_NOTIFIER!r} is the name of `notifier`: choose another")
        for name in policy.notifiers
        if name == PRIMARY_NOTIFIER
    ]
    if policy.monitoring.meta_alert_notify and PRIMARY_NOTIFIER in policy.monitoring.meta_alert_notify:
        j = policy.monitoring.meta_alert_notify.index(PRIMARY_NOTIFIER)
        problems.append(
            FieldProblem(
                ("monitoring", "meta_alert_notify", j),
                "meta-alerts reach PagerDuty through meta_alert_routing_key_secret: name other notifiers here",
            )
        )
    where: list[tuple[Loc, list[str]]] = [(("default_notify",), policy.default_notify)]
    if policy.monitoring.meta_alert_notify:
        where.append((("monitoring", "meta_alert_notify"), policy.monitoring.meta_alert_notify))
    where += [(("rules", i, "notify"), rule.notify) for i, rule in enumerate(policy.rules) if rule.notify]
    if policy.psirt_digest.notify:
        where.append((("psirt_digest", "notify"), policy.psirt_digest.notify))
    for loc, names in where:
        for j, name in enumerate(names):
            if name not in known:
                problems.append(FieldProblem((*loc, j), f"no notifier named {name!r} (configured: {listed})"))
    return problems


# Checks of a valid policy that every load makes (at runtime too), besides the model's own validators: they need
# the file's field paths, which a model validator cannot give.
BUILT_IN_CHECKS: tuple[PolicyCheck, ...] = (notifier_references,)


def _checked(
    where: Validation,
    policy: Policy,
    today: dt.date | None,
    expired_suppressions: ExpiredSuppressions,
    checks: Iterable[PolicyCheck],
) -> Validation:
    errors = [where.problem(p.loc, p.message) for check in (*BUILT_IN_CHECKS, *checks) for p in check(policy)]
    warnings: list[Problem] = []
    if today is not None:
        for p, warning in suppression_expiry(policy, today, expired_suppressions=expired_suppressions):
            (warnings if warning else errors).append(where.problem(p.loc, p.message, warning=warning))
    return replace(where, policy=policy, errors=tuple(errors), warnings=tuple(warnings))


def validate_policy_text(
    text: str,
    source: str = "<policy>",
    *,
    today: dt.date | None = None,
    expired_suppressions: ExpiredSuppressions = "error",
    checks: Iterable[PolicyCheck] = (),
) -> Validation:
    """Validate policy YAML text: YAML (syntax, duplicate keys, unreadable values such as `2027-13-31`), the model,
    then `checks` and, given `today`, the suppressions' expiry. Never raises for a bad file: every problem is in the
    result with file:line: field."""
    data, index, problems = _read_yaml(text, source)
    where = Validation(source, None, lines=index.lines)
    if problems:
        return replace(where, errors=tuple(problems))
    if not isinstance(data, dict):
        return replace(where, errors=(Problem(source, 1, format_loc(()), "expected a mapping of settings"),))
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        return replace(where, errors=_model_problems(exc, where))
    return _checked(where, policy, today, expired_suppressions, checks)


def validate_policy_json(
    text: str,
    source: str = "<policy>",
    *,
    today: dt.date | None = None,
    expired_suppressions: ExpiredSuppressions = "error",
    checks: Iterable[PolicyCheck] = (),
) -> Validation:
    """Validate a policy written by `policy_json` (problems have no line: the YAML it was made from had them)."""
    where = Validation(source, None)
    try:
        policy = Policy.model_validate_json(text)
    except ValidationError as exc:
        return replace(where, errors=_model_problems(exc, where))
    return _checked(where, policy, today, expired_suppressions, checks)


def validate_policy_file(
    path: str | Path,
    *,
    today: dt.date | None = None,
    expired_suppressions: ExpiredSuppressions = "error",
    checks: Iterable[PolicyCheck] = (),
) -> Validation:
    """Validate a policy file: `config/<env>.yaml` (or `.yml`) as people write it, or the `.json` the function
    package ships. See `validate_policy_text`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Validation(str(path), None, (Problem(str(path), None, "", f"cannot read policy file: {exc.strerror}"),))
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        return Validation(str(path), None, (Problem(str(path), line, "", f"not UTF-8 text: {exc.reason}"),))
    validate = validate_policy_json if path.suffix == ".json" else validate_policy_text
    return validate(text, str(path), today=today, expired_suppressions=expired_suppressions, checks=checks)


def validate_policy_dir(
    config_dir: str | Path,
    *,
    today: dt.date | None = None,
    expired_suppressions: ExpiredSuppressions = "error",
    checks: Iterable[PolicyCheck] = (),
) -> DirValidation:
    """Validate every `<env>.yaml` / `<env>.yml` of a directory (see `validate_policy_file`) and what must hold across
    them: the file name is the environment, one file per environment, no account in two environments. Any other
    entry is a warning (dotfiles are ignored)."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        return DirValidation(config_dir, usage_error=f"{config_dir}: no such directory")
    checks = tuple(checks)
    policy_files, other = _dir_entries(config_dir)
    if not policy_files:
        return DirValidation(
            config_dir, other=tuple(other), usage_error=f"{config_dir}: no policy files (<env>.yaml or <env>.yml)"
        )
    files = {
        path: validate_policy_file(path, today=today, expired_suppressions=expired_suppressions, checks=checks)
        for path in policy_files
    }
    extra = _across_files(files)
    files = {path: replace(v, errors=(*v.errors, *extra[path])) for path, v in files.items()}
    return DirValidation(config_dir, files, tuple(other))


def _dir_entries(config_dir: Path) -> tuple[list[Path], list[Problem]]:
    """The policy files of `config_dir`, sorted, and a warning for each other entry (dotfiles are ignored)."""
    policy_files: list[Path] = []
    other: list[Problem] = []
    for entry in sorted(config_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.suffix in POLICY_SUFFIXES and entry.is_file():
            policy_files.append(entry)
        else:
            kind = "a directory" if entry.is_dir() else "not a policy file"
            other.append(
                Problem(str(entry), None, "", f"{kind}, ignored: policies are <env>.yaml or <env>.yml", warning=True)
            )
    return policy_files, other


def _across_files(files: dict[Path, Validation]) -> dict[Path, list[Problem]]:
    """The errors of each file that only show across files: two files of one environment, an `environment` that is
    not the file name, an account in two environments."""
    extra: dict[Path, list[Problem]] = {path: [] for path in files}
    by_env: dict[str, list[Path]] = {}
    for path in files:
        by_env.setdefault(path.stem, []).append(path)
    for env, paths in by_env.items():
        for path in paths[1:]:  # sorted: env.yaml before env.yml
            extra[path].append(
                files[path].problem(
                    ("environment",),
                    f"{paths[0].name} and {path.name} are both the policy of environment {env!r}: keep one",
                )
            )
    scoped: dict[str, tuple[Path, Policy]] = {}
    for path, v in files.items():
        if v.policy is None or extra[path]:
            continue
        if v.policy.environment != path.stem:
            extra[path].append(
                v.problem(("environment",), f"{v.policy.environment!r} does not match the file name {path.stem!r}")
            )
            continue
        scoped[path.stem] = (path, v.policy)
    for path, loc, message in _account_overlaps(scoped):
        extra[path].append(files[path].problem(loc, message))
    return extra


def _account_overlaps(policies: dict[str, tuple[Path, Policy]]) -> list[tuple[Path, Loc, str]]:
    """A finding must belong to one environment: no two environments may list the same account (or `*`)."""
    problems: list[tuple[Path, Loc, str]] = []
    envs = sorted(policies)
    for i, a in enumerate(envs):
        for b in envs[i + 1 :]:
            pa, (path, pb) = policies[a][1], policies[b]
            if pa.all_accounts or pb.all_accounts:
                shared = 'every account (one of them lists "*")'
            else:
                common = sorted(set(pa.accounts) & set(pb.accounts))
                if not common:
                    continue
                shared = ", ".join(common)
            problems.append(
                (
                    path,
                    ("accounts",),
                    f"environments {a!r} and {b!r} share {shared}; a finding must belong to one environment",
                )
            )
    return problems


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML text. Raises `PolicyError` with file:line: field: message for each problem."""
    return validate_policy_text(text, source).raise_for_errors()


def policy_json(policy: Policy) -> str:
    """The validated policy as the function package ships it: JSON, so the Lambda needs no YAML parser (PyYAML's
    import and two parses were ~25 ms of every cold start). The runtime validates it again with the same model."""
    return policy.model_dump_json(indent=1) + "\n"


def parse_policy_json(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy written by `policy_json`. Raises `PolicyError` with file: field: message for each problem
    (no line numbers: the reviewed YAML it was made from was validated, with lines, at synth)."""
    return validate_policy_json(text, source).raise_for_errors()


def load_policy(path: str | Path) -> Policy:
    """A policy file: `config/<env>.yaml` as people write it, or the `.json` the function package ships. The
    functions load theirs with this: `validate_policy_file` without deployment checks (made at synth, on the YAML)
    and without a date (an expired suppression just stops applying; it must never stop the router)."""
    return validate_policy_file(path).raise_for_errors()


def load_policy_dir(config_dir: str | Path) -> dict[str, Policy]:
    """Every `<env>.yaml` / `<env>.yml` in a directory, keyed by environment (`validate_policy_dir` without deployment
    checks or date). Raises `PolicyError` listing every problem."""
    return validate_policy_dir(config_dir).raise_for_errors()


def policy_path(config_dir: str | Path, environment: str) -> Path:
    """The environment's policy file: `<env>.yaml`, else an existing `<env>.yml` (`<env>.yaml` when neither is)."""
    config_dir = Path(config_dir)
    for suffix in POLICY_SUFFIXES:
        path = config_dir / f"{environment}{suffix}"
        if path.is_file():
            return path
    return config_dir / f"{environment}{POLICY_SUFFIXES[0]}"
