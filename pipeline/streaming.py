"""Bronze, Silver and Gold as one Spark application with three streaming queries.

    spark-submit --master spark://HOST:7077 pipeline/streaming.py [--until-caught-up]

The same as ``ticklake job bronze silver gold``; what docker-compose.yml submits to its
Spark master. Settings come from ``TICKLAKE_*`` variables; the flags are those of each job.
"""

if __name__ == "__main__":
    from pipeline import bronze, gold, silver
    from pipeline.runner import main

    main([bronze.JOB, silver.JOB, gold.JOB])
