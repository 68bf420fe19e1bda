"""The base layer: what every layer above may use, importing nothing of minirun's but itself.

    units.py    go-units: human sizes and durations (docker images, ps, stats)
"""
