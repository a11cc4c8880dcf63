"""pipeline.workers: the executors' Python workers freeze their imports once."""

import gc

from pipeline import workers


def test_workers_freeze_what_they_imported_and_collect_the_rest(spark) -> None:
    """In a Spark task the first call moves the objects then alive to the permanent
    generation; a second call freezes nothing more, so what later tasks leave is collected."""

    def task(_: object) -> list[tuple[int, int, bool]]:
        gc.unfreeze()  # a reused worker may have frozen in an earlier test's task
        workers._frozen = False
        before = gc.get_freeze_count()
        workers.freeze_imports()
        first = gc.get_freeze_count()
        garbage = [[] for _ in range(1_000)]
        for item in garbage:
            item.append(item)  # cycles: only the collector frees them
        del garbage, item
        workers.freeze_imports()
        return [(before, first, gc.get_freeze_count() == first and gc.collect() >= 1_000)]

    ((before, first, later_collected),) = (
        spark.sparkContext.parallelize([0], 1).mapPartitions(task).collect())
    assert first > before
    assert first > 10_000  # the worker's imported modules, not just this task's objects
    assert later_collected


def test_outside_a_spark_task_nothing_is_frozen() -> None:
    before = gc.get_freeze_count()
    workers.freeze_imports()
    assert gc.get_freeze_count() == before
