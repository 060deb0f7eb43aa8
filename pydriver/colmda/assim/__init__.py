"""Analysis methods run between forecast windows (pure functions in the method modules, run-loop glue in
:mod:`colmda.assim.hooks`)."""
