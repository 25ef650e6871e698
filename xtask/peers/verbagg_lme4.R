# Fit the random-intercept logistic (or probit) regression on the VerbAgg
# data with the peer lme4 and print, as JSON, the fit time and the estimates.
#
# Usage: Rscript verbagg_lme4.R DATA.dat LINK REPS
#
# DATA.dat is tests/data/verbagg_glmm.dat: whitespace-separated, no header,
# one row per response, the 7 columns id r2 anger male scold shout self
# (see tests/data/README.md). LINK is logit or probit. The model is
#   glmer(r2 ~ anger + male + scold + shout + self + (1 | id),
#         family = binomial(link = LINK), nAGQ = 25)
# (adaptive Gauss-Hermite with 25 points, lme4's default optimizer settings);
# id is made a factor, so the rows of one person need not be contiguous.
# Only the glmer call is timed (system.time elapsed, the median of REPS
# repetitions); starting R, loading lme4 (about 1 s) and reading the data are
# not.
#
# The log-likelihood printed is logLik(fit), the total over rows, natural
# log; npar counts the 6 fixed effects and the random-intercept variance.
#
# Output (one JSON object on standard output):
# {"tool": "lme4", "version": "1.1.31", "link": "logit", "n": 7584,
#  "clusters": 316, "seconds": [...], "median_s": ..., "loglik": ...,
#  "npar": 7, "fixef": {"(Intercept)": ..., "anger": ..., ...},
#  "sd_id": ..., "var_id": ...}

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) {
  stop("usage: Rscript verbagg_lme4.R DATA.dat LINK REPS")
}
path <- args[1]
link <- args[2]
reps <- as.integer(args[3])
if (!(link %in% c("logit", "probit"))) stop("LINK must be logit or probit")
if (is.na(reps) || reps < 1) stop("REPS must be a positive integer")

suppressPackageStartupMessages(library(lme4))

d <- read.table(path, header = FALSE,
                col.names = c("id", "r2", "anger", "male", "scold", "shout", "self"))
d$id <- factor(d$id)

fit_once <- function() {
  glmer(r2 ~ anger + male + scold + shout + self + (1 | id), data = d,
        family = binomial(link = link), nAGQ = 25)
}

secs <- numeric(reps)
fit <- NULL
for (r in seq_len(reps)) {
  secs[r] <- system.time(fit <- fit_once())[["elapsed"]]
}

num <- function(x) sprintf("%.10g", x)
quote <- function(s) paste0("\"", s, "\"")
ll <- logLik(fit)
fe <- fixef(fit)
var_id <- as.numeric(VarCorr(fit)$id)
fixef_json <- paste0("{", paste0(quote(names(fe)), ": ", num(fe), collapse = ", "), "}")

cat(paste0(
  "{", quote("tool"), ": ", quote("lme4"),
  ", ", quote("version"), ": ", quote(as.character(packageVersion("lme4"))),
  ", ", quote("link"), ": ", quote(link),
  ", ", quote("n"), ": ", nrow(d),
  ", ", quote("clusters"), ": ", nlevels(d$id),
  ", ", quote("seconds"), ": [", paste(num(secs), collapse = ", "), "]",
  ", ", quote("median_s"), ": ", num(median(secs)),
  ", ", quote("loglik"), ": ", num(as.numeric(ll)),
  ", ", quote("npar"), ": ", attr(ll, "df"),
  ", ", quote("fixef"), ": ", fixef_json,
  ", ", quote("sd_id"), ": ", num(sqrt(var_id)),
  ", ", quote("var_id"), ": ", num(var_id),
  "}\n"))
