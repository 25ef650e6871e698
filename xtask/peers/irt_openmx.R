# Fit a 2PL (logit, theta ~ N(0, 1)) with OpenMx and rpf's item models, and
# print, as JSON, the fit time and the log-likelihood.
#
# Usage: Rscript irt_openmx.R DATA QPOINTS THREADS REPS
#
# DATA is either a CSV file with a header row (a column named "id" is
# dropped, every other column is an item) or a whitespace-separated file
# without a header, one person per row, every column an item; items are
# coded 0/1. Each item is rpf.grm(outcomes = 2): logit P(1) = a theta + c,
# slope-intercept, the same model as mlmix's `f BY u*; f@1;`.
# Estimation: mxExpectationBA81 with QPOINTS equally spaced quadrature
# points on [-6, 6] (OpenMx's default: 49), EM with Newton-Raphson M-steps
# (mxComputeEM), then standard errors from Oakes' (1999) information, as in
# OpenMx's own IFA tests. OpenMx runs with THREADS threads (its "Number of
# Threads" option and OMP_NUM_THREADS). Only mxRun is timed (system.time
# elapsed, median of REPS repetitions); starting R, loading OpenMx and
# reading the data are not.
#
# Output (one JSON object on standard output):
# {"tool": "OpenMx", "version": "2.21.1", "rpf": "1.0.11", "qpoints": 49,
#  "threads": 2, "n": 316, "items": 24, "seconds": [...], "median_s": ...,
#  "loglik": ..., "npar": 48, "status": 0}

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) {
  stop("usage: Rscript irt_openmx.R DATA QPOINTS THREADS REPS")
}
path <- args[1]
qpoints <- as.integer(args[2])
threads <- as.integer(args[3])
reps <- as.integer(args[4])
if (is.na(qpoints) || qpoints < 3) stop("QPOINTS must be an integer >= 3")
if (is.na(threads) || threads < 1) stop("THREADS must be a positive integer")
if (is.na(reps) || reps < 1) stop("REPS must be a positive integer")

Sys.setenv(OMP_NUM_THREADS = threads)
suppressPackageStartupMessages({
  library(OpenMx)
  library(rpf)
})
mxOption(NULL, "Number of Threads", threads)

first <- readLines(path, n = 1)
if (grepl("[A-Za-z]", first)) {
  raw <- read.csv(path, header = TRUE, check.names = FALSE)
  raw <- raw[, tolower(names(raw)) != "id", drop = FALSE]
} else {
  raw <- read.table(path, header = FALSE)
  names(raw) <- paste0("u", seq_len(ncol(raw)))
}
items <- names(raw)
data <- as.data.frame(lapply(raw, function(x) mxFactor(x, levels = 0:1)))
names(data) <- items

spec <- lapply(items, function(i) rpf.grm(outcomes = 2))
names(spec) <- items
imat <- mxMatrix(name = "item", nrow = 2, ncol = length(items),
                 values = c(1, 0), free = TRUE,
                 dimnames = list(c("f1", "c"), items))

model <- mxModel(model = "irt2pl", imat,
  mxData(observed = data, type = "raw"),
  mxExpectationBA81(ItemSpec = spec, qpoints = qpoints, qwidth = 6),
  mxFitFunctionML(),
  mxComputeSequence(list(
    mxComputeEM("expectation", "scores", mxComputeNewtonRaphson(),
                information = "oakes1999",
                infoArgs = list(fitfunction = "fitfunction")),
    mxComputeHessianQuality(),
    mxComputeStandardError(),
    mxComputeReportDeriv())))

secs <- numeric(reps)
fit <- NULL
for (r in seq_len(reps)) {
  secs[r] <- system.time(fit <- mxRun(model, silent = TRUE))[["elapsed"]]
}

num <- function(x) sprintf("%.10g", x)
quote <- function(s) paste0("\"", s, "\"")
# OpenMx's fit is -2 logL
ll <- -fit$output$fit / 2
cat(paste0(
  "{", quote("tool"), ": ", quote("OpenMx"),
  ", ", quote("version"), ": ", quote(as.character(packageVersion("OpenMx"))),
  ", ", quote("rpf"), ": ", quote(as.character(packageVersion("rpf"))),
  ", ", quote("qpoints"), ": ", qpoints,
  ", ", quote("threads"), ": ", threads,
  ", ", quote("n"), ": ", nrow(data),
  ", ", quote("items"), ": ", length(items),
  ", ", quote("seconds"), ": [", paste(num(secs), collapse = ", "), "]",
  ", ", quote("median_s"), ": ", num(median(secs)),
  ", ", quote("loglik"), ": ", num(ll),
  ", ", quote("npar"), ": ", length(omxGetParameters(fit)),
  ", ", quote("status"), ": ", fit$output$status$code,
  "}\n"))
