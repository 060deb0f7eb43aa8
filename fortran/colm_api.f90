! The only file f2py wraps. Thin: flat c_double / c_int arrays in, calls into the process modules.
! Everything here is stateless: all prognostic state is passed in and out by the caller.
!
! Array layouts (Fortran order, columns last) are documented in docs/core-contract.md and
! fortran/colm_layout.f90; colmda/layout.py mirrors the indices.

subroutine layout_sizes(sizes)
  ! Packed-array sizes, so Python can check that its layout matches the compiled core.
  use colm_const, only: c_int => ik, nl_soil, nsnow_max, nlev
  use colm_layout, only: NCS, NSP, NVP, NCP, NF, ND, NDS
  implicit none
  integer(c_int), intent(out) :: sizes(10)   ! nl_soil, nsnow_max, nlev, NCS, NSP, NVP, NCP, NF, ND, NDS (-)
  sizes = [nl_soil, nsnow_max, nlev, NCS, NSP, NVP, NCP, NF, ND, NDS]
end subroutine layout_sizes

subroutine default_soil_thickness(dz)
  ! CoLM's 10 default soil layer thicknesses from its node-depth formula.
  use colm_const, only: c_double => r8, nl_soil
  use colm_grid, only: colm_soil_thickness
  implicit none
  real(c_double), intent(out) :: dz(10)      ! soil layer thickness (m)
  call colm_soil_thickness(dz)
end subroutine default_soil_thickness

subroutine advance(ncol, nsteps, nper, nout, dt, hydr_model, dz_soil, forc, soilpar, vegpar, colpar, &
                   t_soisno, wliq_soisno, wice_soisno, dz_snow, cstate, diag, diag_soil, ierr)
  ! Advances ncol independent columns through nsteps steps of length dt. Diagnostics are means over
  ! consecutive blocks of nper steps (nout = nsteps / nper blocks). State arrays are updated in place.
  use colm_const, only: c_double => r8, c_int => ik, nl_soil, nlev, nsnow_max
  use colm_layout, only: NCS, NSP, NVP, NCP, NF, ND, NDS
  use colm_column, only: column_run
  implicit none
  integer(c_int), intent(in) :: ncol                         ! number of columns (-)
  integer(c_int), intent(in) :: nsteps                       ! number of time steps (-)
  integer(c_int), intent(in) :: nper                         ! steps per diagnostic output (-)
  integer(c_int), intent(in) :: nout                         ! number of outputs, nsteps / nper (-)
  real(c_double), intent(in) :: dt                           ! time step (s)
  integer(c_int), intent(in) :: hydr_model                   ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: dz_soil(10)                  ! soil layer thickness (m)
  real(c_double), intent(in) :: forc(8, nsteps, ncol)        ! forcing, see colm_layout F_* (mixed units)
  real(c_double), intent(in) :: soilpar(14, 10, ncol)        ! soil parameters per layer, SP_* (mixed units)
  real(c_double), intent(in) :: vegpar(19, ncol)             ! PFT parameters, VP_* (mixed units)
  real(c_double), intent(in) :: colpar(7, ncol)              ! column parameters, CP_* (mixed units)
  real(c_double), intent(inout) :: t_soisno(15, ncol)        ! snow (1:5) + soil (6:15) temperature (K)
  real(c_double), intent(inout) :: wliq_soisno(15, ncol)     ! liquid water per layer (kg m-2)
  real(c_double), intent(inout) :: wice_soisno(15, ncol)     ! ice per layer (kg m-2)
  real(c_double), intent(inout) :: dz_snow(5, ncol)          ! snow layer thickness, 0 if absent (m)
  real(c_double), intent(inout) :: cstate(9, ncol)           ! column scalar state, CS_* (mixed units)
  real(c_double), intent(out) :: diag(34, nout, ncol)        ! diagnostics, D_* (mixed units)
  real(c_double), intent(out) :: diag_soil(3, 10, nout, ncol) ! per-layer soil diagnostics, DS_* (mixed)
  integer(c_int), intent(out) :: ierr(ncol)                  ! 0 ok, else the first step that failed (-)
  integer :: icol
  ! release the GIL for the Fortran call: other Python threads (forcing prefetch, history writer) run meanwhile
  !f2py threadsafe
  !$omp parallel do schedule(dynamic, 16)
  do icol = 1, ncol
    call column_run(nsteps, nper, nout, dt, hydr_model, dz_soil, forc(:, :, icol), soilpar(:, :, icol), &
                    vegpar(:, icol), colpar(:, icol), t_soisno(:, icol), wliq_soisno(:, icol), &
                    wice_soisno(:, icol), dz_snow(:, icol), cstate(:, icol), diag(:, :, icol), &
                    diag_soil(:, :, :, icol), ierr(icol))
  end do
  !$omp end parallel do
end subroutine advance

! >>> soilwater kernel (owned by the soil-water module author; verification entry point)
subroutine soilwater_kernel(nl, nsteps, hydr_model, kmean, dt, dz, hpar, ice, sink, top_type, top_value, &
                            pond_head, bot_type, bot_value, bot_depth, h_init, theta, h, q_top, q_bot, &
                            theta_hist, h_hist, nsub, niter, ierr)
  ! The Richards solver of colm_soilwater (the one soil_water uses) on an arbitrary column of nl layers with
  ! chosen hydraulics, boundary conditions and constant sinks, advanced nsteps steps of dt. Layers are stacked
  ! from the surface with nodes at the layer centres.
  ! top_type: 1 flux (top_value downward, mm s-1), 2 head (top_value, mm), 3 rain: flux top_value limited by
  ! the capacity at surface head pond_head. bot_type: 1 flux (bot_value downward, mm s-1), 2 head (bot_value,
  ! mm) at depth bot_depth (m, >= column depth), 3 free drainage, 4 no flux, 5 water table at bot_depth.
  use colm_const, only: c_double => r8, c_int => ik
  use colm_soilwater, only: richards_solve
  implicit none
  integer(c_int), intent(in) :: nl                        ! number of layers (-)
  integer(c_int), intent(in) :: nsteps                    ! number of steps (-)
  integer(c_int), intent(in) :: hydr_model                ! 1 Campbell, 2 van Genuchten-Mualem (-)
  integer(c_int), intent(in) :: kmean                     ! interface K: 1 arithmetic, 2 geometric, 3 upstream (-)
  real(c_double), intent(in) :: dt                        ! time step (s)
  real(c_double), intent(in) :: dz(nl)                    ! layer thickness (m)
  real(c_double), intent(in) :: hpar(14, nl)              ! hydraulic parameters per layer, SP_* (mixed)
  real(c_double), intent(in) :: ice(nl)                   ! volumetric ice content (m3 m-3)
  real(c_double), intent(in) :: sink(nl)                  ! sink per layer, > 0 removes water (mm s-1)
  integer(c_int), intent(in) :: top_type                  ! top boundary type (-)
  real(c_double), intent(in) :: top_value(nsteps)         ! top flux (mm s-1) or head (mm) per step
  real(c_double), intent(in) :: pond_head                 ! surface head when rain ponds (mm)
  integer(c_int), intent(in) :: bot_type                  ! bottom boundary type (-)
  real(c_double), intent(in) :: bot_value(nsteps)         ! bottom flux (mm s-1) or head (mm) per step
  real(c_double), intent(in) :: bot_depth                 ! depth of the bottom head / water table (m)
  integer(c_int), intent(in) :: h_init                    ! 1: h is the starting head guess, 0: from theta (-)
  real(c_double), intent(inout) :: theta(nl)              ! volumetric liquid water content (m3 m-3)
  real(c_double), intent(inout) :: h(nl)                  ! pressure head (mm)
  real(c_double), intent(out) :: q_top(nsteps)            ! mean downward flux at the surface per step (mm s-1)
  real(c_double), intent(out) :: q_bot(nsteps)            ! mean downward flux at the bottom per step (mm s-1)
  real(c_double), intent(out) :: theta_hist(nl, nsteps)   ! water content after each step (m3 m-3)
  real(c_double), intent(out) :: h_hist(nl, nsteps)       ! pressure head after each step (mm)
  integer(c_int), intent(out) :: nsub                     ! total sub-steps (-)
  integer(c_int), intent(out) :: niter                    ! total Newton iterations (-)
  integer(c_int), intent(out) :: ierr                     ! 0 ok, 1 some sub-step did not converge (-)
  real(c_double) :: z(nl), zi(0:nl)                       ! node and interface depths (m)
  real(c_double) :: dwat(nl)                              ! change of water per step (mm)
  integer(c_int) :: hflag, ns, ni, ie                     ! per-step solver outputs (-)
  integer :: j, n                                         ! layer and step indices (-)
  zi(0) = 0.0_c_double
  do j = 1, nl
    zi(j) = zi(j-1) + dz(j)
    z(j) = zi(j-1) + 0.5_c_double * dz(j)
  end do
  nsub = 0
  niter = 0
  ierr = 0
  hflag = h_init
  do n = 1, nsteps
    call richards_solve(nl, hydr_model, kmean, dt, hpar, dz, z, zi, ice, sink, top_type, top_value(n), &
                        pond_head, bot_type, bot_value(n), bot_depth, hflag, theta, h, dwat, q_top(n), &
                        q_bot(n), ns, ni, ie)
    hflag = 1
    nsub = nsub + ns
    niter = niter + ni
    ierr = max(ierr, ie)
    theta_hist(:, n) = theta
    h_hist(:, n) = h
  end do
end subroutine soilwater_kernel

subroutine soilwater_column_kernel(nsteps, hydr_model, dt, dz, soilpar, t_soil, wice, qgtop, qseva, etr, &
                                   rootr, wliq, gw, qsurf, qsub, qinfl, qcharge, wliq_hist, gw_hist, ierr)
  ! Runs the column routine soil_water (the one colm_column calls) for nsteps steps with given surface
  ! forcing, so that runoff, ponding, aquifer and water table behaviour and the water balance can be tested.
  ! gw = [wdsrf (kg m-2), zwt (m), wa (kg m-2)].
  use colm_const, only: c_double => r8, c_int => ik, nl_soil
  use colm_grid, only: soil_geometry
  use colm_soilwater, only: soil_water
  implicit none
  integer(c_int), intent(in) :: nsteps                    ! number of steps (-)
  integer(c_int), intent(in) :: hydr_model                ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: dt                        ! time step (s)
  real(c_double), intent(in) :: dz(10)                    ! soil layer thickness (m)
  real(c_double), intent(in) :: soilpar(14, 10)           ! soil parameters, SP_* (mixed)
  real(c_double), intent(in) :: t_soil(10)                ! soil temperature (K)
  real(c_double), intent(in) :: wice(10)                  ! soil ice (kg m-2)
  real(c_double), intent(in) :: qgtop(nsteps)             ! liquid water reaching the surface (kg m-2 s-1)
  real(c_double), intent(in) :: qseva(nsteps)             ! soil/pond evaporation, < 0 dew (kg m-2 s-1)
  real(c_double), intent(in) :: etr(nsteps)               ! transpiration (kg m-2 s-1)
  real(c_double), intent(in) :: rootr(10)                 ! transpiration fraction per layer (-)
  real(c_double), intent(inout) :: wliq(10)               ! soil liquid water (kg m-2)
  real(c_double), intent(inout) :: gw(3)                  ! ponding (kg m-2), water table (m), aquifer (kg m-2)
  real(c_double), intent(out) :: qsurf(nsteps)            ! surface runoff (kg m-2 s-1)
  real(c_double), intent(out) :: qsub(nsteps)             ! baseflow (kg m-2 s-1)
  real(c_double), intent(out) :: qinfl(nsteps)            ! infiltration (kg m-2 s-1)
  real(c_double), intent(out) :: qcharge(nsteps)          ! net soil -> aquifer transfer (kg m-2 s-1)
  real(c_double), intent(out) :: wliq_hist(10, nsteps)    ! soil liquid water after each step (kg m-2)
  real(c_double), intent(out) :: gw_hist(3, nsteps)       ! gw after each step (mixed)
  integer(c_int), intent(out) :: ierr                     ! largest error code of soil_water over the run (-)
  real(c_double) :: z(nl_soil), zi(0:nl_soil)             ! node and interface depths (m)
  integer(c_int) :: ie                                    ! per-step error code (-)
  integer :: n                                            ! step index (-)
  call soil_geometry(dz, z, zi)
  ierr = 0
  do n = 1, nsteps
    call soil_water(hydr_model, dt, soilpar, dz, z, zi, t_soil, wliq, wice, qgtop(n), qseva(n), etr(n), &
                    rootr, gw(1), gw(2), gw(3), qsurf(n), qsub(n), qinfl(n), qcharge(n), ie)
    ierr = max(ierr, ie)
    wliq_hist(:, n) = wliq
    gw_hist(:, n) = gw
  end do
end subroutine soilwater_column_kernel

subroutine soil_hydraulics_kernel(n, hydr_model, sp, vol_liq, vol_ice, smp, dsmp_dtheta, hk, dhk_dtheta, &
                                  theta_psi, dtheta_dpsi, hk_psi, dhk_dpsi, state_theta)
  ! The colm_hydraulics functions of one layer at n liquid contents: matric potential and conductivity from
  ! theta, then liquid content, capacity and conductivity back from that matric potential; and what
  ! layer_state_theta gives from theta in one go (the Richards solver's start).
  use colm_const, only: c_double => r8, c_int => ik
  use colm_hydraulics, only: soil_matric_potential, soil_conductivity, soil_state_psi, hyd_layer, layer_state_theta
  implicit none
  integer(c_int), intent(in) :: n                         ! number of evaluation points (-)
  integer(c_int), intent(in) :: hydr_model                ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: sp(14)                    ! soil parameters of the layer, SP_* (mixed)
  real(c_double), intent(in) :: vol_liq(n)                ! volumetric liquid content (m3 m-3)
  real(c_double), intent(in) :: vol_ice(n)                ! volumetric ice content (m3 m-3)
  real(c_double), intent(out) :: smp(n)                   ! matric potential (mm)
  real(c_double), intent(out) :: dsmp_dtheta(n)           ! d smp / d theta (mm)
  real(c_double), intent(out) :: hk(n)                    ! conductivity (mm s-1)
  real(c_double), intent(out) :: dhk_dtheta(n)            ! d hk / d theta (mm s-1)
  real(c_double), intent(out) :: theta_psi(n)             ! liquid content at smp (m3 m-3)
  real(c_double), intent(out) :: dtheta_dpsi(n)           ! capacity at smp (mm-1)
  real(c_double), intent(out) :: hk_psi(n)                ! conductivity at smp (mm s-1)
  real(c_double), intent(out) :: dhk_dpsi(n)              ! d hk / d smp at smp (s-1)
  real(c_double), intent(out) :: state_theta(6, n)        ! layer_state_theta: 1 if it applies (else 0 and the
                                                          ! rest 0), smp (mm), theta (m3 m-3), capacity (mm-1),
                                                          ! hk (mm s-1), dhk/dsmp (s-1)
  integer :: i                                            ! point index (-)
  logical :: ok                                           ! layer_state_theta applies (-)
  do i = 1, n
    call layer_state_theta(hyd_layer(hydr_model, sp, vol_ice(i)), vol_liq(i), state_theta(2, i), state_theta(3, i), &
                           state_theta(4, i), state_theta(5, i), state_theta(6, i), ok)
    if (ok) then
      state_theta(1, i) = 1.0_c_double
    else
      state_theta(:, i) = 0.0_c_double
    end if
    call soil_matric_potential(hydr_model, sp, vol_liq(i), vol_ice(i), smp(i), dsmp_dtheta(i))
    call soil_conductivity(hydr_model, sp, vol_liq(i), vol_ice(i), hk(i), dhk_dtheta(i))
    call soil_state_psi(hydr_model, sp, smp(i), vol_ice(i), theta_psi(i), dtheta_dpsi(i), hk_psi(i), dhk_dpsi(i))
  end do
end subroutine soil_hydraulics_kernel
! <<< soilwater kernel

! >>> heat kernel (owned by the soil-temperature module author; verification entry point)

subroutine heat_kernel_layers(n, nsteps, dt, dz, cvol, tku, tkf, iphase, bctype, bcval, dbc, t, wliq, wice, &
                              tout, gout, xmfout, residout, ierr)
  ! Heat conduction on n arbitrary layers (solids of volumetric heat capacity cvol plus water/ice), with
  ! optional phase change of pure water, through the core's Crank-Nicolson solver and phase-change routine.
  ! Top boundary per step: bctype 1 Dirichlet, bcval = surface temperature at mid-step (K), applied as the
  ! centred flux g0 (Ts - (T1_old + T1_new)/2), g0 = 2 k1 / dz1; bctype 2 flux, hflx0 = bcval (W m-2) and
  ! dhflx_dt = dbc (W m-2 K-1). Zero flux at the bottom.
  use colm_const, only: c_double => r8, c_int => ik, cnfac
  use colm_soiltemp, only: layers_heat_step
  implicit none
  integer(c_int), intent(in) :: n                        ! number of layers (-)
  integer(c_int), intent(in) :: nsteps                   ! number of steps (-)
  real(c_double), intent(in) :: dt                       ! time step (s)
  real(c_double), intent(in) :: dz(n)                    ! layer thickness (m)
  real(c_double), intent(in) :: cvol(n)                  ! volumetric heat capacity of the solids (J m-3 K-1)
  real(c_double), intent(in) :: tku(n)                   ! conductivity with the water liquid (W m-1 K-1)
  real(c_double), intent(in) :: tkf(n)                   ! conductivity with the water frozen (W m-1 K-1)
  integer(c_int), intent(in) :: iphase                   ! 1 phase change, 0 none (-)
  integer(c_int), intent(in) :: bctype                   ! 1 Dirichlet, 2 flux (-)
  real(c_double), intent(in) :: bcval(nsteps)            ! surface temperature (K) or top flux (W m-2)
  real(c_double), intent(in) :: dbc(nsteps)              ! flux derivative for bctype 2 (W m-2 K-1)
  real(c_double), intent(inout) :: t(n)                  ! temperature (K)
  real(c_double), intent(inout) :: wliq(n)               ! liquid water (kg m-2)
  real(c_double), intent(inout) :: wice(n)               ! ice (kg m-2)
  real(c_double), intent(out) :: tout(n, nsteps)         ! temperature after each step (K)
  real(c_double), intent(out) :: gout(nsteps)            ! top flux applied in each step (W m-2)
  real(c_double), intent(out) :: xmfout(nsteps)          ! latent heat of phase change per step (W m-2)
  real(c_double), intent(out) :: residout(nsteps)        ! heat budget residual per step (W m-2)
  integer(c_int), intent(out) :: ierr                    ! 0 ok, 1 bad arguments (-)
  real(c_double) :: z(n), zi(0:n), c0(n)                 ! node, interface depth (m), solid capacity (J m-2 K-1)
  real(c_double) :: g0, fl, hflx0, dhdt                  ! W m-2 K-1, -, W m-2, W m-2 K-1
  integer :: j, k
  ierr = 0
  tout = 0.0_c_double
  gout = 0.0_c_double
  xmfout = 0.0_c_double
  residout = 0.0_c_double
  if (n < 2 .or. (bctype /= 1 .and. bctype /= 2) .or. .not. (dt > 0.0_c_double)) then
    ierr = 1
    return
  end if
  zi(0) = 0.0_c_double
  do j = 1, n
    zi(j) = zi(j-1) + dz(j)
    z(j) = zi(j-1) + 0.5_c_double * dz(j)
    c0(j) = cvol(j) * dz(j)
  end do
  do k = 1, nsteps
    if (bctype == 1) then
      fl = 1.0_c_double
      if (wliq(1) + wice(1) > 0.0_c_double) fl = wliq(1) / (wliq(1) + wice(1))
      g0 = 2.0_c_double * (fl * tku(1) + (1.0_c_double - fl) * tkf(1)) / dz(1)
      hflx0 = g0 * (bcval(k) - t(1))
      dhdt = -cnfac * g0
    else
      hflx0 = bcval(k)
      dhdt = dbc(k)
    end if
    call layers_heat_step(n, dt, dz, z, zi, c0, tku, tkf, iphase, t, wliq, wice, hflx0, dhdt, &
                          gout(k), xmfout(k), residout(k))
    tout(:, k) = t
  end do
end subroutine heat_kernel_layers

subroutine heat_kernel_column(nsteps, dt, hydr_model, snl, soilpar, dz, hflx0, dhflx_dt, t, wliq, wice, &
                              scv, snowdp, tout, wliqout, wiceout, scvout, gout, xmfout, qmout, residout, &
                              heatc, ierr)
  ! The column routine soilsnow_temperature repeated over nsteps with fixed snow layering (no snow
  ! processes), driven by a prescribed top flux and derivative; returns the trajectory, the budget terms
  ! and the column heat content (column_heat_content) before each step and after the last.
  ! Layered arrays are the 15 slots -4..10 (snow 1:5, soil 6:15) as in advance.
  use colm_const, only: c_double => r8, c_int => ik, nl_soil, maxsnl
  use colm_grid, only: snow_geometry
  use colm_soiltemp, only: soilsnow_temperature, column_heat_content
  implicit none
  integer(c_int), intent(in) :: nsteps                   ! number of steps (-)
  real(c_double), intent(in) :: dt                       ! time step (s)
  integer(c_int), intent(in) :: hydr_model               ! 1 Campbell, 2 van Genuchten-Mualem (-)
  integer(c_int), intent(in) :: snl                      ! minus the number of snow layers (-)
  real(c_double), intent(in) :: soilpar(14, 10)          ! soil parameters per layer, SP_* (mixed units)
  real(c_double), intent(in) :: dz(15)                   ! layer thickness, snow slots unused above snl (m)
  real(c_double), intent(in) :: hflx0(nsteps)            ! top heat flux at the old temperature (W m-2)
  real(c_double), intent(in) :: dhflx_dt(nsteps)         ! its derivative w.r.t. the top temperature (W m-2 K-1)
  real(c_double), intent(inout) :: t(15)                 ! temperature (K)
  real(c_double), intent(inout) :: wliq(15)              ! liquid water (kg m-2)
  real(c_double), intent(inout) :: wice(15)              ! ice (kg m-2)
  real(c_double), intent(inout) :: scv                   ! snow water, all snow (kg m-2)
  real(c_double), intent(inout) :: snowdp                ! snow depth (m)
  real(c_double), intent(out) :: tout(15, nsteps)        ! temperature after each step (K)
  real(c_double), intent(out) :: wliqout(15, nsteps)     ! liquid water after each step (kg m-2)
  real(c_double), intent(out) :: wiceout(15, nsteps)     ! ice after each step (kg m-2)
  real(c_double), intent(out) :: scvout(nsteps)          ! snow water after each step (kg m-2)
  real(c_double), intent(out) :: gout(nsteps)            ! top flux applied (W m-2)
  real(c_double), intent(out) :: xmfout(nsteps)          ! latent heat of phase change (W m-2)
  real(c_double), intent(out) :: qmout(nsteps)           ! melt of snow without layers (kg m-2 s-1)
  real(c_double), intent(out) :: residout(nsteps)        ! heat budget residual (W m-2)
  real(c_double), intent(out) :: heatc(nsteps + 1)       ! column heat content rel. to ice at tfrz (J m-2)
  integer(c_int), intent(out) :: ierr                    ! 0 ok, else soilsnow_temperature's code (-)
  real(c_double) :: dzl(maxsnl+1:nl_soil), z(maxsnl+1:nl_soil), zi(maxsnl:nl_soil) ! geometry (m)
  integer(c_int) :: imelt(maxsnl+1:nl_soil)              ! phase-change flags (-)
  integer :: k
  ierr = 0
  tout = 0.0_c_double
  wliqout = 0.0_c_double
  wiceout = 0.0_c_double
  scvout = 0.0_c_double
  gout = 0.0_c_double
  xmfout = 0.0_c_double
  qmout = 0.0_c_double
  residout = 0.0_c_double
  heatc = 0.0_c_double
  if (snl < maxsnl .or. snl > 0) then
    ierr = 1
    return
  end if
  dzl = dz
  call snow_geometry(snl, dz(6:15), dzl, z, zi)
  heatc(1) = column_heat_content(snl, soilpar, dzl, t, wliq, wice, scv)
  do k = 1, nsteps
    call soilsnow_temperature(hydr_model, snl, dt, soilpar, dzl, z, zi, t, wliq, wice, scv, snowdp, &
                              hflx0(k), dhflx_dt(k), gout(k), xmfout(k), qmout(k), imelt, residout(k), ierr)
    if (ierr /= 0) return
    tout(:, k) = t
    wliqout(:, k) = wliq
    wiceout(:, k) = wice
    scvout(k) = scv
    heatc(k + 1) = column_heat_content(snl, soilpar, dzl, t, wliq, wice, scv)
  end do
end subroutine heat_kernel_column

! <<< heat kernel

! >>> canopy kernel (owned by the canopy module author; verification entry point)
subroutine canopy_photosynthesis_kernel(c3, vcmax25, effcon, g1, g0, btran, apar, tleaf, psurf, co2_ppm, ea, rb, out)
  ! One big leaf: photosynthesis and stomatal conductance (colm_photosynthesis%leaf_photosynthesis).
  ! out = [an (mol CO2 m-2 s-1), ag (mol CO2 m-2 s-1), rd (mol CO2 m-2 s-1), ci (Pa), cs (Pa),
  !        gs (mol H2O m-2 s-1), rs (s m-1)]
  use colm_const, only: c_double => r8, c_int => ik
  use colm_photosynthesis, only: leaf_photosynthesis
  implicit none
  integer(c_int), intent(in) :: c3             ! 1 C3, 0 C4 (-)
  real(c_double), intent(in) :: vcmax25        ! Vcmax at 25 C of the leaf (mol CO2 m-2 s-1)
  real(c_double), intent(in) :: effcon         ! quantum efficiency (mol CO2 mol-1 photon)
  real(c_double), intent(in) :: g1             ! Ball-Berry slope (-)
  real(c_double), intent(in) :: g0             ! Ball-Berry intercept (mol H2O m-2 s-1)
  real(c_double), intent(in) :: btran          ! soil water stress factor (-)
  real(c_double), intent(in) :: apar           ! absorbed PAR per leaf area (W m-2)
  real(c_double), intent(in) :: tleaf          ! leaf temperature (K)
  real(c_double), intent(in) :: psurf          ! air pressure (Pa)
  real(c_double), intent(in) :: co2_ppm        ! CO2 mole fraction (umol mol-1)
  real(c_double), intent(in) :: ea             ! canopy air vapour pressure (Pa)
  real(c_double), intent(in) :: rb             ! leaf boundary-layer resistance (s m-1)
  real(c_double), intent(out) :: out(7)        ! results, see above (mixed)
  call leaf_photosynthesis(c3 == 1, vcmax25, effcon, g1, g0, btran, apar, tleaf, psurf, co2_ppm, ea, rb, &
                           out(1), out(2), out(3), out(4), out(5), out(6), out(7))
end subroutine canopy_photosynthesis_kernel

subroutine canopy_stability_kernel(n, zeta, psim, psih)
  ! Paulson (1970) integrated stability functions for unstable zeta (colm_turbulence).
  use colm_const, only: c_double => r8, c_int => ik
  use colm_turbulence, only: psi_m_paulson, psi_h_paulson
  implicit none
  integer(c_int), intent(in) :: n              ! number of values (-)
  real(c_double), intent(in) :: zeta(n)        ! z / L, <= 0 (-)
  real(c_double), intent(out) :: psim(n)       ! momentum stability function (-)
  real(c_double), intent(out) :: psih(n)       ! heat stability function (-)
  psim = psi_m_paulson(zeta)
  psih = psi_h_paulson(zeta)
end subroutine canopy_stability_kernel

subroutine canopy_profile_kernel(zldis, z0m, z0h, z0q, obu, out)
  ! Integrated flux-profile functions of Zeng et al. (1998): out = [fm, fh, fq] (-).
  use colm_const, only: c_double => r8
  use colm_turbulence, only: mo_profile
  implicit none
  real(c_double), intent(in) :: zldis          ! height above displacement (m)
  real(c_double), intent(in) :: z0m, z0h, z0q  ! roughness lengths (m)
  real(c_double), intent(in) :: obu            ! Obukhov length (m)
  real(c_double), intent(out) :: out(3)        ! fm, fh, fq (-)
  call mo_profile(zldis, z0m, z0h, z0q, obu, out(1), out(2), out(3))
end subroutine canopy_profile_kernel

subroutine canopy_twostream_kernel(chil, rho, tau, coszen, lsai, albg_dir, albg_dif, idir, out)
  ! Two-stream transfer for one band and unit incoming flux (idir 1 beam, 2 diffuse).
  ! out = [reflected, absorbed by vegetation, absorbed by sunlit phytoelements, absorbed by ground,
  !        diffuse downward flux at the ground] (-)
  use colm_const, only: c_double => r8, c_int => ik
  use colm_radiation, only: twostream_band
  implicit none
  real(c_double), intent(in) :: chil           ! leaf angle index (-)
  real(c_double), intent(in) :: rho, tau       ! phytoelement reflectance and transmittance (-)
  real(c_double), intent(in) :: coszen         ! cosine of the solar zenith angle (-)
  real(c_double), intent(in) :: lsai           ! LAI + SAI (m2 m-2)
  real(c_double), intent(in) :: albg_dir       ! ground albedo, direct (-)
  real(c_double), intent(in) :: albg_dif       ! ground albedo, diffuse (-)
  integer(c_int), intent(in) :: idir           ! 1 direct, 2 diffuse incidence (-)
  real(c_double), intent(out) :: out(5)        ! results (-)
  call twostream_band(chil, rho, tau, coszen, lsai, albg_dir, albg_dif, int(idir), &
                      out(1), out(2), out(3), out(4), out(5))
end subroutine canopy_twostream_kernel

subroutine canopy_radiation_kernel(coszen, swdown, vegpar, lai, sai, colpar, theta1, fsno, snowage, out, fcansno)
  ! surface_radiation for one column. out (W m-2 or -):
  !  1 sabv, 2 sabg, 3 swref, 4 albedo, 5 fsun, 6 lai_sun, 7 lai_sha, 8 apar_sun, 9 apar_sha, 10 fn_sun,
  !  11 fn_sha, 12 extkb, 13-16 sw(vis dir, nir dir, vis dif, nir dif), 17-20 alb (same order),
  !  21-24 albg, 25-28 fabv, 29 vegetated flag, 30 swnet
  use colm_const, only: c_double => r8
  use colm_radiation, only: surface_rad_t, surface_radiation
  implicit none
  real(c_double), intent(in) :: coszen         ! cosine of the solar zenith angle (-)
  real(c_double), intent(in) :: swdown         ! incoming shortwave (W m-2)
  real(c_double), intent(in) :: vegpar(19)     ! PFT parameters VP_* (mixed)
  real(c_double), intent(in) :: lai, sai       ! leaf and stem area index (m2 m-2)
  real(c_double), intent(in) :: colpar(7)      ! column parameters CP_* (mixed)
  real(c_double), intent(in) :: theta1         ! water content of soil layer 1 (m3 m-3)
  real(c_double), intent(in) :: fsno           ! snow cover fraction (-)
  real(c_double), intent(in) :: snowage        ! non-dimensional snow age (-)
  real(c_double), intent(out) :: out(30)       ! results (mixed)
  real(c_double), intent(in) :: fcansno        ! fraction of the phytoelements covered by snow (-), default 0
  !f2py real(c_double), intent(in), optional :: fcansno = 0.0
  type(surface_rad_t) :: rad
  call surface_radiation(coszen, swdown, vegpar, lai, sai, colpar, theta1, fsno, snowage, rad, fcansno=fcansno)
  out = 0.0_c_double
  out(1:12) = [rad%sabv, rad%sabg, rad%swref, rad%albedo, rad%fsun, rad%lai_sun, rad%lai_sha, rad%apar_sun, &
               rad%apar_sha, rad%fn_sun, rad%fn_sha, rad%extkb]
  out(13:16) = reshape(rad%sw, [4])
  out(17:20) = reshape(rad%alb, [4])
  out(21:24) = reshape(rad%albg, [4])
  out(25:28) = reshape(rad%fabv, [4])
  out(29) = real(rad%vegetated, c_double)
  out(30) = rad%swnet
end subroutine canopy_radiation_kernel

subroutine canopy_interception_kernel(dt, lai, sai, isveg, rain, snow, ldew, out)
  ! canopy_interception: ldew updated in place; out = [rain_ground, snow_ground] (kg m-2 s-1).
  use colm_const, only: c_double => r8
  use colm_canopy, only: canopy_interception
  implicit none
  real(c_double), intent(in) :: dt             ! time step (s)
  real(c_double), intent(in) :: lai, sai       ! leaf and stem area index (m2 m-2)
  real(c_double), intent(in) :: isveg          ! VP_ISVEG flag (-)
  real(c_double), intent(in) :: rain, snow     ! precipitation above the canopy (kg m-2 s-1)
  real(c_double), intent(inout) :: ldew        ! intercepted water (kg m-2)
  real(c_double), intent(out) :: out(2)        ! rain and snow reaching the ground (kg m-2 s-1)
  call canopy_interception(dt, lai, sai, isveg, rain, snow, ldew, out(1), out(2))
end subroutine canopy_interception_kernel

subroutine canopy_water_stress_kernel(hydr_model, vegpar, soilpar, t_soil, wliq_soil, wice_soil, dz_soil, &
                                      btran, rootr)
  ! soil_water_stress for one column.
  use colm_const, only: c_double => r8, c_int => ik
  use colm_canopy, only: soil_water_stress
  implicit none
  integer(c_int), intent(in) :: hydr_model     ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: vegpar(19)     ! PFT parameters (mixed)
  real(c_double), intent(in) :: soilpar(14, 10) ! soil parameters (mixed)
  real(c_double), intent(in) :: t_soil(10)     ! soil temperature (K)
  real(c_double), intent(in) :: wliq_soil(10)  ! soil liquid water (kg m-2)
  real(c_double), intent(in) :: wice_soil(10)  ! soil ice (kg m-2)
  real(c_double), intent(in) :: dz_soil(10)    ! layer thickness (m)
  real(c_double), intent(out) :: btran         ! soil water stress factor (-)
  real(c_double), intent(out) :: rootr(10)     ! uptake fractions (-)
  call soil_water_stress(vegpar, soilpar, hydr_model, t_soil, wliq_soil, wice_soil, dz_soil, btran, rootr)
end subroutine canopy_water_stress_kernel

subroutine canopy_surface_kernel(met, vegpar, lai, sai, colpar, snl, fsno, snowage, t_soisno, wliq_soisno, &
                                 wice_soisno, dz_soisno, soilpar, hydr_model, ldew, dt, co2_ppm, dt_top, &
                                 avail_ground, avail_canopy, tleaf, out, rootr)
  ! surface_radiation + surface_fluxes + update_ground_fluxes(dt_top) for one column.
  ! met = [tair (K), qair (kg kg-1), psurf (Pa), wind (m s-1), swdown (W m-2), lwdown (W m-2), coszen (-), zref (m)]
  ! Layered arrays: index 1..15 = CoLM layers -4..10 (snow -4..0, soil 1..10).
  ! out: 1 tleaf, 2 leaf_res_conv, 3 niter, 4 hflx0, 5 dhflx_dt, 6 swnet, 7 lwnet, 8 qh, 9 qle, 10 g,
  !  11 fevpl, 12 etr, 13 fevpg, 14 btran, 15 gpp, 16 trad, 17 ebal_err, 18 hv, 19 hg, 20 sabv, 21 sabg,
  !  22 lwup, 23 taf, 24 qaf, 25 ustar, 26 rs_sun, 27 rs_sha, 28 rb, 29 leaf_res, 30 htvp_v, 31 htvp_g,
  !  32 emv, 33 emg, 34 dhg_dt, 35 dfevpg_dt, 36 lai_sun, 37 apar_sun, 38 apar_sha, 39 obu, 40 rah, 41 raw,
  !  42 rd, 43 rss, 44 fwet, 45 lw_below, 46 lwg_emit, 47 vegetated, 48 t_top0, 49 rhoair, 50 evap,
  !  51 fevpg_snow, 52 fevpg_soil, 53 excess_ground, 54 excess_canopy, 55 hv0, 56 hg0, 57 fevpg0,
  !  58 albedo, 59 an_sun, 60 an_sha
  use colm_const, only: c_double => r8, c_int => ik, denh2o, denice
  use colm_radiation, only: surface_rad_t, surface_radiation
  use colm_canopy, only: surface_flux_t, surface_fluxes, update_ground_fluxes
  implicit none
  real(c_double), intent(in) :: met(8)          ! meteorology, see above (mixed)
  real(c_double), intent(in) :: vegpar(19)      ! PFT parameters (mixed)
  real(c_double), intent(in) :: lai, sai        ! exposed leaf and stem area index (m2 m-2)
  real(c_double), intent(in) :: colpar(7)       ! column parameters (mixed)
  integer(c_int), intent(in) :: snl             ! minus the number of snow layers (-)
  real(c_double), intent(in) :: fsno            ! snow cover fraction (-)
  real(c_double), intent(in) :: snowage         ! non-dimensional snow age (-)
  real(c_double), intent(in) :: t_soisno(15)    ! layer temperature (K)
  real(c_double), intent(in) :: wliq_soisno(15) ! layer liquid water (kg m-2)
  real(c_double), intent(in) :: wice_soisno(15) ! layer ice (kg m-2)
  real(c_double), intent(in) :: dz_soisno(15)   ! layer thickness (m)
  real(c_double), intent(in) :: soilpar(14, 10) ! soil parameters (mixed)
  integer(c_int), intent(in) :: hydr_model      ! 1 Campbell, 2 van Genuchten-Mualem (-)
  real(c_double), intent(in) :: ldew            ! intercepted water (kg m-2)
  real(c_double), intent(in) :: dt              ! time step (s)
  real(c_double), intent(in) :: co2_ppm         ! CO2 (umol mol-1)
  real(c_double), intent(in) :: dt_top          ! top-layer temperature change applied in the update (K)
  real(c_double), intent(in) :: avail_ground    ! water available for ground evaporation (kg m-2)
  real(c_double), intent(in) :: avail_canopy    ! water available for canopy evaporation (kg m-2)
  real(c_double), intent(inout) :: tleaf        ! leaf temperature (K)
  real(c_double), intent(out) :: out(60)        ! results, see above (mixed)
  real(c_double), intent(out) :: rootr(10)      ! uptake fractions (-)
  type(surface_rad_t) :: rad
  type(surface_flux_t) :: sf
  real(c_double) :: theta1                      ! water content of soil layer 1 (m3 m-3)
  theta1 = wliq_soisno(6) / (dz_soisno(6) * denh2o) + wice_soisno(6) / (dz_soisno(6) * denice)
  call surface_radiation(met(7), met(5), vegpar, lai, sai, colpar, theta1, fsno, snowage, rad)
  call surface_fluxes(met(1), met(2), met(3), met(4), met(6), met(8), vegpar, lai, sai, rad, int(snl), fsno, &
                      t_soisno, wliq_soisno, wice_soisno, dz_soisno, soilpar, hydr_model, ldew, dt, tleaf, sf, &
                      co2_ppm)
  call update_ground_fluxes(dt_top, avail_ground, avail_canopy, dt, sf)
  out = [sf%tleaf, sf%leaf_res_conv, real(sf%niter, c_double), sf%hflx0, sf%dhflx_dt, sf%swnet, sf%lwnet, &
         sf%qh, sf%qle, sf%g, sf%fevpl, sf%etr, sf%fevpg, sf%btran, sf%gpp, sf%trad, sf%ebal_err, sf%hv, sf%hg, &
         sf%sabv, sf%sabg, sf%lwup, sf%taf, sf%qaf, sf%ustar, sf%rs_sun, sf%rs_sha, sf%rb, sf%leaf_res, &
         sf%htvp_v, sf%htvp_g, sf%emv, sf%emg, sf%dhg_dt, sf%dfevpg_snow_dt + sf%dfevpg_soil_dt, rad%lai_sun, &
         rad%apar_sun, rad%apar_sha, sf%obu, sf%rah, sf%raw, sf%rd, sf%rss, sf%fwet, sf%lw_below, sf%lwg_emit, &
         real(sf%vegetated, c_double), sf%t_top0, sf%rhoair, sf%evap, sf%fevpg_snow, sf%fevpg_soil, &
         sf%excess_ground, sf%excess_canopy, sf%hv0, sf%hg0, sf%fevpg_snow0 + sf%fevpg_soil0, rad%albedo, &
         sf%an_sun, sf%an_sha]
  rootr = sf%rootr
end subroutine canopy_surface_kernel
! <<< canopy kernel
