"""A store writer for the concurrency test, in a module that spawned processes import cheaply."""

from scalelab.results.store import Store


def write_points(db: str, worker: int, n: int) -> None:
    with Store(db) as store:
        for i in range(n):
            store.put_point(
                {"run_id": f"w{worker}-{i}", "study": "c", "status": "finished", "loss": float(i)}
            )
