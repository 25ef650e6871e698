#!/bin/sh
# A Monte Carlo study as a Slurm job array: each array task runs one shard
# of the replications and writes its partial-results file; a job that
# waits for the array merges them into the summary.
#
#   jobid=$(sbatch --parsable --array=1-20 montecarlo_slurm.sh study.inp)
#   sbatch --dependency=afterok:$jobid --wrap "mlmix merge study.reps-*.json -o study.out --json study.json"
#
# Every replication draws its data from its own random stream (SEED and
# its number), so the merged summary is the one a single `mlmix fit
# study.inp` gives, bit for bit, whatever the number of tasks.
#
# Outside Slurm (or to try it): SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=20 sh montecarlo_slurm.sh study.inp
#
#SBATCH --job-name=mlmix-study
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --output=mlmix-study-%a.log
set -eu
study=${1:?usage: montecarlo_slurm.sh STUDY.inp}
task=${SLURM_ARRAY_TASK_ID:?run as a job array (sbatch --array=1-N) or set SLURM_ARRAY_TASK_ID}
tasks=${SLURM_ARRAY_TASK_COUNT:?run as a job array (sbatch --array=1-N) or set SLURM_ARRAY_TASK_COUNT}
mlmix=${MLMIX:-mlmix}
exec "$mlmix" fit "$study" --shard "$task/$tasks" --threads "${SLURM_CPUS_PER_TASK:-1}" --quiet
