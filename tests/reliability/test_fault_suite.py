"""The fault suite of issue 12: on real PostgreSQL and Redis, with the real web server, real
``celery worker`` processes and the job dispatcher, (a) SIGKILL a worker mid-generation, (b)
restart a non-persistent Redis with 100 accepted jobs queued, (c) stop PostgreSQL for 10 s
while jobs run, (d) SIGKILL the web process and start it again — then every accepted job (every
202) is succeeded, failed or canceled within 2 minutes of recovery, no job is left queued or
running, and no image is duplicated or left as a file without its row.

One deployment (:class:`tests.reliability.fault_cluster.FaultCluster`: private PostgreSQL and
Redis, 3 s leases) serves the scenarios in order; after each, the counts over everything the
database holds so far are printed (``-s``) and asserted. A fifth scenario goes beyond the
acceptance: (e) a worker frozen past its lease while it writes files. ``bench/faults.py`` runs
the same scenarios outside pytest.
"""

from __future__ import annotations

import time

import pytest

from .fault_cluster import SETTLE_LIMIT, census, fault_cluster, table

RESULTS: list[tuple[str, dict]] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = time.monotonic()
    with fault_cluster(tmp_path_factory.mktemp("faults")) as deployment:
        print(f"\nfault cluster up in {time.monotonic() - started:.1f}s")
        yield deployment
    if RESULTS:
        print(f"\n{table(RESULTS)}\nfault suite: {time.monotonic() - started:.0f}s in all")


@pytest.fixture(scope="module")
def outcomes():
    return []


def _check(cluster, outcomes, outcome) -> dict:
    """Settle ``outcome``, count everything so far, print and assert the acceptance."""
    cluster.settle(outcome)
    outcomes.append(outcome)
    counts = census(cluster, [outcome])
    whole = census(cluster, outcomes)
    RESULTS.append((outcome.scenario, counts))
    print(f"\n{outcome.scenario}: {counts} notes={outcome.notes}")
    for code, message in cluster.rows(
            "SELECT error_code, left(error_message, 120) FROM jobs_job WHERE status = 'failed' "
            "AND id::text = ANY(%s)", [outcome.accepted]):
        print(f"  failed {code}: {message}")
    assert counts["accepted"] > 0
    assert outcome.settle_seconds is not None, (
        f"jobs of '{outcome.scenario}' still not ended {SETTLE_LIMIT:.0f}s after recovery: "
        f"{counts}")
    assert counts["lost"] == 0 and whole["lost"] == 0
    assert whole["stranded"] == 0, "a job row nobody accepted is left queued/running"
    assert (whole["duplicates"], whole["missing"]) == (0, 0)
    assert (whole["orphan_files"], whole["missing_files"]) == (0, 0)
    assert whole["png_files"] == whole["image_rows"]
    assert not [code for code in whole["refused"] if str(code).startswith("5")
                and code != 503], whole["refused"]
    return counts


def test_a_worker_sigkill_mid_generation(cluster, outcomes):
    from .fault_cluster import scenario_worker_kill

    outcome = scenario_worker_kill(cluster)
    counts = _check(cluster, outcomes, outcome)
    killed = cluster.rows("SELECT status, attempts, step, total_steps FROM jobs_job "
                          "WHERE id::text = %s", [outcome.notes["killed_job"]])
    # The dispatcher handed it back (attempts left): it ran again, to the end.
    assert killed == [("succeeded", 2, 40, 40)]
    assert counts["succeeded"] == counts["accepted"]


def test_b_redis_restart_with_100_accepted_jobs(cluster, outcomes):
    from .fault_cluster import scenario_redis_restart

    outcome = scenario_redis_restart(cluster, jobs=100)
    print(f"\nbefore the restart: {outcome.notes}")
    counts = _check(cluster, outcomes, outcome)
    assert outcome.notes["messages_before"] == 100 and outcome.notes["new_redis"]
    assert counts["accepted"] == 100
    assert counts["succeeded"] == 100  # nothing failed: the messages were published again
    republished = cluster.rows("SELECT count(*) FROM jobs_job WHERE id::text = ANY(%s) AND "
                               "published_at > %s",
                               [outcome.accepted, outcome.notes["restarted_at"]])
    assert republished == [(100,)]


def test_c_postgres_stopped_for_10_seconds(cluster, outcomes):
    from .fault_cluster import scenario_postgres_stop

    outcome = scenario_postgres_stop(cluster, down_seconds=10.0)
    # No 500 from a dead pooled connection (CONN_HEALTH_CHECKS in the settings).
    assert outcome.notes["api_after_restart"] == {200: len(outcome.accepted)}
    _check(cluster, outcomes, outcome)


def test_d_web_process_sigkill_and_restart(cluster, outcomes):
    from .fault_cluster import scenario_web_kill

    outcome = scenario_web_kill(cluster)
    assert outcome.notes["accepted_before_kill"] > 0
    assert sum(outcome.notes["client_retries"].values()) > 0  # the kill hit the clients
    counts = _check(cluster, outcomes, outcome)
    assert counts["accepted"] > outcome.notes["accepted_before_kill"]  # served again


def test_e_worker_frozen_past_its_lease_leaves_no_file(cluster, outcomes):
    """Beyond the four faults of the acceptance: a worker frozen (SIGSTOP) while it writes a
    generation's files, for longer than its lease, then resumed after another worker finished
    the job. The frozen run's rows roll back with its lost lease; its files must not stay."""
    from .fault_cluster import scenario_worker_freeze

    outcome = scenario_worker_freeze(cluster)
    killed = cluster.rows("SELECT status, attempts FROM jobs_job WHERE id::text = %s",
                          [outcome.accepted[0]])
    if killed != [("succeeded", 2)]:  # not the expected failure: the scenario went wrong
        raise RuntimeError(f"the frozen job ended as {killed}")
    _check(cluster, outcomes, outcome)
