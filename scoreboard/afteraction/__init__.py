"""After the exercise: replay a finished (or running) game and write its after-action report.

- `record`: a game's record (effective game, event streams, live history) from live Redis
  or from an `adrange export` folder;
- `timeline`: the streams merged in the order they happened, and the store as it stood
  after any prefix of them (what the board reads);
- `server`: `adrange replay`, the real board page fed from the timeline;
- `facts`: every number of the report, computed from the events in one place;
- `charts`, `report`: the report's charts (matplotlib SVG) and its HTML and PDF.
"""
