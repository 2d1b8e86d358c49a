"""GLAM: aggregate CSV shards in a bucket → upserted aggregation tables → serving views."""
