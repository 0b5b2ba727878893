"""The output files a run owns in its folder, recorded in its journal.

A resumed search may rank fewer or other losses, so files it wrote before can go stale. Only files
the journal records this run writing are ever removed: a ``best_*.yaml`` or ``best_*.py`` the user
put there is left alone. And nothing is written through a symbolic link: a link where an output
goes is replaced by the file (the link's target is untouched), and an output folder that leads out
of the run folder is refused.
"""

from __future__ import annotations

from pathlib import Path

from lossevo.errors import LossevoError
from lossevo.store.database import Database

_META = "owned_files"


class OwnedFiles:
    """Writes a run's output files and removes only its own stale ones."""

    def __init__(self, run_dir: Path, journal: Database) -> None:
        self.run_dir = run_dir
        self.journal = journal
        self._root = run_dir.resolve()
        self._owned: set[str] = {str(p) for p in journal.get_meta(_META) or [] if isinstance(p, str)}

    def folder(self, relative: str) -> Path:
        """``run_dir/relative``, created; refused if it leads out of the run folder (a link)."""
        path = self.run_dir / relative
        if not _inside(path.resolve(), self._root):
            raise LossevoError(
                f"{path} leads out of the run folder ({path.resolve()}); a run writes only inside its own "
                "folder: remove the link, or start the run in another folder"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, relative: str, text: str) -> Path:
        """Write ``run_dir/relative`` (replacing a link there, not its target) and record it."""
        path = self.run_dir / relative
        self.folder(str(Path(relative).parent))
        if path.is_symlink():
            path.unlink()
        self._owned.add(relative)
        self.journal.set_meta(_META, sorted(self._owned))  # recorded before it exists: never orphaned
        path.write_text(text)
        return path

    def remove_stale(self, folder: str, keep: list[Path]) -> None:
        """Remove the files under ``folder`` this run wrote before and did not write now."""
        kept = {str(p.relative_to(self.run_dir)) for p in keep}
        for relative in sorted(self._owned):
            if Path(relative).parent != Path(folder) or relative in kept:
                continue
            path = self.run_dir / relative
            if path.is_file() and not path.is_symlink():
                path.unlink()
            self._owned.discard(relative)
        self.journal.set_meta(_META, sorted(self._owned))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
