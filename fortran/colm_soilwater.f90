! Soil water of one column: infiltration with ponding, surface runoff (SIMTOP), the Richards equation, root
! water uptake and soil evaporation, drainage to an unconfined aquifer, baseflow (SIMTOP), water table and
! aquifer storage. Water balance is exact to round-off.
!
! Richards equation (mixed form, z positive downward, h pressure head, q positive downward):
!   d theta/dt = -dq/dz - S,   q = -K(h) (dh/dz - 1)
! Discretisation: cell-centred finite volumes on arbitrary layer thicknesses, backward Euler in time, solved
! for h by Newton iteration with the mixed-form storage term of Celia, Bouloutas and Zarba (1990, WRR 26,
! 1483-1496): theta(h^{m+1}) ~ theta(h^m) + C(h^m) (h^{m+1} - h^m). The Jacobian is tridiagonal (colm_tridiag);
! if a pivot of the full Newton matrix nearly vanishes the iteration uses Celia's modified Picard matrix
! (conductivity derivatives dropped, an M-matrix). A backtracking line search and adaptive sub-stepping make
! the solve robust; water contents are then updated from the interface fluxes of the accepted iterate, so every
! sub-step conserves mass exactly whatever the convergence tolerance.
!
! Interface conductivity: arithmetic mean of the node conductivities by default (Celia et al. 1990, HYDRUS);
! geometric mean (CoLM202X-like) and upstream weighting (CoLM2014) are available for the verification kernel.
!
! Runoff and groundwater follow CoLM2014 / CLM4 SIMTOP (Niu et al. 2005, JGR 110, D21106; Niu et al. 2007,
! JGR 112, D07103), adapted so that the water table and aquifer stay consistent with the Richards solution
! (see docs/physics-soilwater.md).
module colm_soilwater
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
  use colm_const, only: r8, ik, nl_soil, denh2o, denice, smpmin, pondmx
  use colm_layout, only: NSP, SP_THETA_S, SP_KSAT
  use colm_tridiag, only: tridiag_solve, tridiag_solve_checked
  use colm_hydraulics, only: ice_impedance, soil_psi_saturation, &
                             hyd_layer_t, hyd_layer, layer_state_psi, layer_matric_potential, &
                             layer_state_theta
  implicit none
  private
  public :: soil_water, richards_solve
  public :: KM_ARITHMETIC, KM_GEOMETRIC, KM_UPSTREAM
  public :: TOP_FLUX, TOP_HEAD, TOP_RAIN, TOP_ATMOS, BOT_FLUX, BOT_HEAD, BOT_FREE, BOT_ZERO, BOT_WATERTABLE
  public :: WA_MAX, ZWT_MAX

  ! interface conductivity choices
  integer(ik), parameter :: KM_ARITHMETIC = 1    ! arithmetic mean of node conductivities (-)
  integer(ik), parameter :: KM_GEOMETRIC = 2     ! geometric mean (-)
  integer(ik), parameter :: KM_UPSTREAM = 3      ! conductivity of the upstream node (-)
  ! top boundary types
  integer(ik), parameter :: TOP_FLUX = 1         ! prescribed downward flux (-)
  integer(ik), parameter :: TOP_HEAD = 2         ! prescribed surface pressure head (-)
  integer(ik), parameter :: TOP_RAIN = 3         ! flux limited by the soil's capacity at a ponding head (-)
  integer(ik), parameter :: TOP_ATMOS = 4        ! upward (evaporation) flux limited by the flux at a critical
                                                 ! surface head pond_head = h_crit (-)
  ! bottom boundary types
  integer(ik), parameter :: BOT_FLUX = 1         ! prescribed downward flux (-)
  integer(ik), parameter :: BOT_HEAD = 2         ! prescribed pressure head at a depth (mean conductivity) (-)
  integer(ik), parameter :: BOT_FREE = 3         ! free drainage, unit gradient (-)
  integer(ik), parameter :: BOT_ZERO = 4         ! no flux (-)
  integer(ik), parameter :: BOT_WATERTABLE = 5   ! exchange with a water table, bottom-node conductivity (-)

  ! solver controls
  integer, parameter :: maxit = 25               ! Newton iterations per sub-step (-)
  integer, parameter :: max_halving = 10         ! smallest sub-step is dt / 2**max_halving (-)
  integer, parameter :: max_forced = 4           ! unconverged sub-steps accepted before the rest is forced (-)
  real(r8), parameter :: tol_theta = 1.0e-10_r8  ! convergence: max |residual| * dt / dz (m3 m-3)
  real(r8), parameter :: tol_stall = 1.0e-7_r8   ! residual accepted once the iteration stops converging (m3 m-3)
  real(r8), parameter :: reg_rel = 1.0e-12_r8    ! relative diagonal shift of the Jacobian (-)
  real(r8), parameter :: piv_min = 1.0e-8_r8     ! smallest relative pivot accepted from the Newton matrix (-)
  real(r8), parameter :: taylor_rel = 1.0e-7_r8  ! relative head change evaluated by Taylor expansion (-)

  ! runoff and groundwater (CoLM2014 / CLM4 SIMTOP)
  integer(ik), parameter :: KMEAN_COLUMN = KM_ARITHMETIC  ! interface conductivity used by soil_water (-)
  real(r8), parameter :: wtfact = 0.38_r8        ! maximum saturated fraction (-)
  real(r8), parameter :: fsat_decay = 0.25_r8    ! saturated fraction decay 0.5 f, f = 0.5 m-1 (m-1)
  real(r8), parameter :: rsbmx = 5.5e-3_r8       ! maximum baseflow (mm s-1)
  real(r8), parameter :: rsb_decay = 2.5_r8      ! baseflow decay with water table depth (m-1)
  real(r8), parameter :: sy_min = 0.02_r8        ! minimum specific yield (-)
  real(r8), parameter :: ZWT_MAX = 80.0_r8       ! deepest water table (m)
  real(r8), parameter :: WA_MAX = 5000.0_r8      ! aquifer storage when the water table is at the soil bottom (mm)
  real(r8), parameter :: sat_frac = 0.999_r8     ! relative fill at which a layer counts as saturated (-)

contains

  ! ---------------------------------------------------------------------------------------------------------
  ! Interface conductivity from the conductivities of the node above (a) and below (b) and its derivatives.
  pure subroutine interface_k(kmean, ka, kb, dka, dkb, downward, kh, dkh_a, dkh_b)
    integer(ik), intent(in) :: kmean             ! KM_* choice (-)
    real(r8), intent(in) :: ka, kb               ! node conductivities above / below (mm s-1)
    real(r8), intent(in) :: dka, dkb             ! their derivatives with respect to the node heads (s-1)
    logical, intent(in) :: downward              ! flow is downward (node a is upstream) (-)
    real(r8), intent(out) :: kh                  ! interface conductivity (mm s-1)
    real(r8), intent(out) :: dkh_a, dkh_b        ! d kh / d h_a, d kh / d h_b (s-1)
    real(r8), parameter :: ktiny = 1.0e-30_r8    ! floor that keeps the geometric mean differentiable (mm s-1)
    select case (kmean)
    case (KM_GEOMETRIC)
      kh = sqrt(max(ka, ktiny) * max(kb, ktiny))
      dkh_a = 0.5_r8 * kh / max(ka, ktiny) * dka
      dkh_b = 0.5_r8 * kh / max(kb, ktiny) * dkb
    case (KM_UPSTREAM)
      if (downward) then
        kh = ka
        dkh_a = dka
        dkh_b = 0.0_r8
      else
        kh = kb
        dkh_a = 0.0_r8
        dkh_b = dkb
      end if
    case default
      kh = 0.5_r8 * (ka + kb)
      dkh_a = 0.5_r8 * dka
      dkh_b = 0.5_r8 * dkb
    end select
  end subroutine interface_k

  ! Residual of the discrete Richards equation and its tridiagonal Jacobian with respect to the heads h:
  ! R_j = dz_j (theta_j - theta0_j) / dt - q_{j-1} + q_j + S_j  (mm s-1); q(0) top, q(nl) bottom flux.
  pure subroutine richards_residual(nl, kmean, sdz, rsdz, rdist, hl, th0, sink, &
                                    top_type, top_value, pond_head, bot_type, bot_value, kb_top, kb_bot, &
                                    newton, broad, h, res, q, amx, bmx, cmx, resnorm, hc, cst)
    integer, intent(in) :: nl                    ! number of layers (-)
    integer(ik), intent(in) :: kmean             ! interface conductivity choice (-)
    real(r8), intent(in) :: sdz(nl), rsdz(nl)    ! dzm / dts (mm s-1) and its reciprocal (s mm-1)
    real(r8), intent(in) :: rdist(0:nl)          ! 1 / node distance across interface j (top: surface to node 1,
                                                 ! bottom: node nl to the bottom head) (mm-1)
    type(hyd_layer_t), intent(in) :: hl(nl)      ! hydraulic constants of the layers at their ice content (mixed)
    real(r8), intent(in) :: th0(nl)              ! liquid content at the start of the sub-step (m3 m-3)
    real(r8), intent(in) :: sink(nl)             ! sink (mm s-1)
    integer(ik), intent(in) :: top_type, bot_type ! boundary types (-)
    real(r8), intent(in) :: top_value            ! top flux (mm s-1) or head (mm)
    real(r8), intent(in) :: pond_head            ! surface head used by TOP_RAIN (mm)
    real(r8), intent(in) :: bot_value            ! bottom flux (mm s-1) or head (mm)
    real(r8), intent(in) :: kb_top, kb_bot       ! conductivity at the boundary head of TOP_HEAD / TOP_RAIN and of
                                                 ! BOT_HEAD (boundary_k), the same in every evaluation (mm s-1)
    logical, intent(in) :: newton                ! include conductivity derivatives (-)
    logical, intent(in) :: broad                 ! give every draining full node its unsaturated capacity (-)
    real(r8), intent(in) :: h(nl)                ! pressure heads (mm)
    real(r8), intent(out) :: res(nl)             ! residual (mm s-1)
    real(r8), intent(out) :: q(0:nl)             ! interface fluxes, downward (mm s-1)
    real(r8), intent(out) :: amx(nl), bmx(nl), cmx(nl) ! Jacobian diagonals (s-1)
    real(r8), intent(out) :: resnorm             ! max |res| dts / dzm (m3 m-3)
    real(r8), intent(inout) :: hc(nl)            ! head of the last exact hydraulic evaluation of each layer, NaN = none (mm)
    real(r8), intent(inout) :: cst(4, nl)        ! theta (-), capacity (mm-1), K (mm s-1) and dK/dh (s-1) there
    real(r8) :: th(nl), cp(nl), hk(nl), dhk(nl)  ! liquid (-), d theta/dh (mm-1), K (mm s-1), dK/dh (s-1)
    real(r8) :: dqa(0:nl), dqb(0:nl)             ! dq/dh of the node above / below each interface (s-1)
    real(r8) :: kh, dkh_a, dkh_b, g              ! interface K (mm s-1), derivatives (s-1), gradient (-)
    real(r8) :: hb                               ! prescribed surface head (mm)
    real(r8) :: qcap, dqcap, fnewt               ! infiltration capacity (mm s-1), its derivative; 1 Newton, 0 Picard
    real(r8) :: cleft                            ! capacity just below saturation / the ice cap (mm-1)
    real(r8) :: dhj                              ! change of the head since the last exact evaluation (mm)
    integer :: j                                 ! layer index (-)

    fnewt = merge(1.0_r8, 0.0_r8, newton)
    do j = 1, nl
      ! Late Newton steps move most layers by a tiny fraction of their head. Within a relative 1e-7 of the last
      ! exact evaluation, and on the smooth part of the retention curve (ice-free, unsaturated, above smpmin),
      ! theta and K are taken from their first-order Taylor expansion: its error, ~ (k dh/h)^2 / 2 relative with
      ! k = dlnK/dlnh < 30, is below 1e-11 in K and 1e-13 in theta, far below the 1e-10 convergence tolerance;
      ! capacity and dK/dh (Jacobian only) keep their values at that point.
      dhj = h(j) - hc(j)
      if (abs(dhj) <= taylor_rel * abs(hc(j)) .and. max(h(j), hc(j)) < hl(j)%psis .and. &
          min(h(j), hc(j)) > smpmin .and. hl(j)%cap >= hl(j)%ths) then
        th(j) = cst(1, j) + cst(2, j) * dhj
        cp(j) = cst(2, j)
        hk(j) = cst(3, j) + cst(4, j) * dhj
        dhk(j) = cst(4, j)
      else
        call layer_state_psi(hl(j), h(j), th(j), cp(j), hk(j), dhk(j))
        hc(j) = h(j)
        cst(1, j) = th(j)
        cst(2, j) = cp(j)
        cst(3, j) = hk(j)
        cst(4, j) = dhk(j)
      end if
      dhk(j) = fnewt * dhk(j)
    end do
    ! no node above the surface / below the bottom; the boundary fluxes below may set dqb(0) and dqa(nl)
    dqa(0) = 0.0_r8
    dqb(0) = 0.0_r8
    dqa(nl) = 0.0_r8
    dqb(nl) = 0.0_r8
    ! interior interfaces
    do j = 1, nl - 1
      g = (h(j) - h(j+1)) * rdist(j) + 1.0_r8
      call interface_k(kmean, hk(j), hk(j+1), dhk(j), dhk(j+1), g > 0.0_r8, kh, dkh_a, dkh_b)
      q(j) = kh * g
      dqa(j) = dkh_a * g + kh * rdist(j)
      dqb(j) = dkh_b * g - kh * rdist(j)
    end do
    ! top boundary
    select case (top_type)
    case (TOP_HEAD, TOP_RAIN, TOP_ATMOS)
      hb = merge(top_value, pond_head, top_type == TOP_HEAD)
      g = (hb - h(1)) * rdist(0) + 1.0_r8
      call interface_k(kmean, kb_top, hk(1), 0.0_r8, dhk(1), g > 0.0_r8, kh, dkh_a, dkh_b)
      qcap = kh * g
      dqcap = dkh_b * g - kh * rdist(0)
      if ((top_type == TOP_RAIN .and. top_value <= qcap) .or. (top_type == TOP_ATMOS .and. top_value >= qcap)) then
        ! the prescribed flux: infiltration below the capacity at the ponding head, or an evaporation demand the
        ! soil can supply without its surface head falling below h_crit
        q(0) = top_value
      else
        q(0) = qcap
        dqb(0) = dqcap
      end if
    case default
      q(0) = top_value
    end select
    ! bottom boundary
    select case (bot_type)
    case (BOT_HEAD)
      g = (h(nl) - bot_value) * rdist(nl) + 1.0_r8
      call interface_k(kmean, hk(nl), kb_bot, dhk(nl), 0.0_r8, g > 0.0_r8, kh, dkh_a, dkh_b)
      q(nl) = kh * g
      dqa(nl) = dkh_a * g + kh * rdist(nl)
    case (BOT_WATERTABLE)
      g = (h(nl) - bot_value) * rdist(nl) + 1.0_r8
      q(nl) = hk(nl) * g
      dqa(nl) = dhk(nl) * g + hk(nl) * rdist(nl)
    case (BOT_FREE)
      q(nl) = hk(nl)
      dqa(nl) = dhk(nl)
    case (BOT_ZERO)
      q(nl) = 0.0_r8
    case default
      q(nl) = bot_value
    end select
    ! residual and Jacobian rows; a relative diagonal shift keeps a saturated, no-flux column non-singular
    resnorm = 0.0_r8
    do j = 1, nl
      res(j) = sdz(j) * (th(j) - th0(j)) - q(j-1) + q(j) + sink(j)
      resnorm = max(resnorm, abs(res(j)) * rsdz(j))
      amx(j) = -dqa(j-1)
      cmx(j) = dqb(j)
      ! A full node (zero capacity) that has to lose water may only be able to do so through the unsaturated
      ! side of the kink in theta(h) (at the ice cap with almost no conductance, or in a closed saturated
      ! column with a sink). Then the Jacobian takes that side's capacity, so that Newton steps onto that side
      ! instead of across it; 'broad' (the retry of a failed sub-step) applies this to every such node.
      if (cp(j) <= 0.0_r8 .and. res(j) > 0.0_r8) then
        ! (the capacity just below the kink is computed only here, where it is needed)
        cleft = capacity_below_full(hl(j))
        if (broad .or. abs(dqa(j) - dqb(j-1)) < 1.0e-3_r8 * sdz(j) * cleft) cp(j) = cleft
      end if
      bmx(j) = sdz(j) * cp(j) + dqa(j) - dqb(j-1)
      bmx(j) = bmx(j) + reg_rel * (abs(bmx(j)) + abs(amx(j)) + abs(cmx(j))) + tiny(1.0_r8)
    end do
    amx(1) = 0.0_r8
    cmx(nl) = 0.0_r8
  end subroutine richards_residual

  ! Capacity d theta/dh just below the kink of theta(h) at saturation or at the ice cap (mm-1): at the head of
  ! the full content less a relative 1e-6 (and 1e-9 mm).
  pure real(r8) function capacity_below_full(hl) result(cleft)
    type(hyd_layer_t), intent(in) :: hl          ! hydraulic constants of the layer (mixed)
    real(r8) :: thmax, hfull, scr, dsmp, dk      ! full content (m3 m-3), head (mm), unused outputs
    call layer_state_psi(hl, 0.0_r8, thmax, scr, dsmp, dk)
    call layer_matric_potential(hl, thmax, hfull, dsmp)
    hfull = hfull - 1.0e-6_r8 * abs(hfull) - 1.0e-9_r8
    call layer_state_psi(hl, hfull, scr, cleft, dsmp, dk)
  end function capacity_below_full

  ! The head of a layer from its water content; where layer_state_theta applies, the hydraulic state there seeds
  ! the evaluation cache of richards_residual, so that the first residual needs no forward evaluation of it.
  pure subroutine start_head(hl, theta, h, hc, cst)
    type(hyd_layer_t), intent(in) :: hl          ! hydraulic constants of the layer (mixed)
    real(r8), intent(in) :: theta                ! liquid content (m3 m-3)
    real(r8), intent(out) :: h                   ! pressure head (mm)
    real(r8), intent(inout) :: hc                ! head of the cached evaluation, NaN = none (mm)
    real(r8), intent(inout) :: cst(4)            ! theta (-), capacity (mm-1), K (mm s-1), dK/dh (s-1) there
    real(r8) :: dsmp                             ! unused derivative (mm)
    logical :: seeded                            ! layer_state_theta handled the layer (-)
    call layer_state_theta(hl, theta, h, cst(1), cst(2), cst(3), cst(4), seeded)
    if (seeded) then
      hc = h
    else
      call layer_matric_potential(hl, theta, h, dsmp)
    end if
  end subroutine start_head

  ! ---------------------------------------------------------------------------------------------------------
  ! Implicit Richards-equation solve over dt for one column of nl layers with the given boundary conditions.
  ! theta is updated from the time-integrated interface fluxes (exact mass conservation); dwat returns the
  ! same change in mm. Used by soil_water (column) and by the verification kernel in colm_api.
  pure subroutine richards_solve(nl, hydr_model, kmean, dt, sp, dz, z, zi, vol_ice, sink, &
                                 top_type, top_value, pond_head, bot_type, bot_value, bot_depth, &
                                 h_init, theta, h, dwat, q_top, q_bot, nsub, niter, ierr, hl_in, thmin_in, h_start, &
                                 state_start, seeded_start)
    integer, intent(in) :: nl                    ! number of layers (-)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    integer(ik), intent(in) :: kmean             ! interface conductivity: KM_ARITHMETIC/GEOMETRIC/UPSTREAM (-)
    real(r8), intent(in) :: dt                   ! time step (s)
    real(r8), intent(in) :: sp(NSP, nl)          ! soil parameters per layer, SP_* (mixed)
    real(r8), intent(in) :: dz(nl)               ! layer thickness (m)
    real(r8), intent(in) :: z(nl)                ! node depths, zi(j-1) < z(j) < zi(j) (m)
    real(r8), intent(in) :: zi(0:nl)             ! interface depths, zi(0) = surface (m)
    real(r8), intent(in) :: vol_ice(nl)          ! volumetric ice content, constant over dt (m3 m-3)
    real(r8), intent(in) :: sink(nl)             ! sink per layer, uptake/evaporation (mm s-1, > 0 removes)
    integer(ik), intent(in) :: top_type          ! TOP_FLUX, TOP_HEAD or TOP_RAIN (-)
    real(r8), intent(in) :: top_value            ! downward flux (mm s-1) or surface pressure head (mm)
    real(r8), intent(in) :: pond_head            ! surface head when TOP_RAIN ponds (mm)
    integer(ik), intent(in) :: bot_type          ! BOT_FLUX/HEAD/FREE/ZERO/WATERTABLE (-)
    real(r8), intent(in) :: bot_value            ! downward flux (mm s-1) or pressure head (mm)
    real(r8), intent(in) :: bot_depth            ! depth of the bottom head for BOT_HEAD/BOT_WATERTABLE (m)
    integer(ik), intent(in) :: h_init            ! 1: h holds a starting guess; 0: start from theta (-)
    real(r8), intent(inout) :: theta(nl)         ! volumetric liquid water content (m3 m-3)
    real(r8), intent(inout) :: h(nl)             ! pressure head (mm)
    real(r8), intent(out) :: dwat(nl)            ! change of liquid water over dt (mm)
    real(r8), intent(out) :: q_top, q_bot        ! mean downward fluxes at the top and bottom over dt (mm s-1)
    integer(ik), intent(out) :: nsub, niter      ! sub-steps and Newton iterations used (-)
    integer(ik), intent(out) :: ierr             ! 0 ok, 1 not converged at the smallest sub-step (-)
    type(hyd_layer_t), intent(in), optional :: hl_in(nl) ! hyd_layer(hydr_model, sp(:,j), vol_ice(j)) if the
                                                 ! caller has it already (mixed)
    real(r8), intent(in), optional :: thmin_in(nl) ! liquid content at smpmin of those layers (m3 m-3)
    real(r8), intent(in), optional :: h_start(nl) ! with h_init = 0: layer_matric_potential(hl(j), theta(j)) where
                                                 ! <= 0, computed here where 1 (mm)
    real(r8), intent(in), optional :: state_start(4, nl) ! with h_start: layer_state_theta's state at h_start where
                                                 ! seeded_start (mixed)
    logical, intent(in), optional :: seeded_start(nl) ! state_start is given (-)

    real(r8) :: dzm(nl), zm(nl), zim(0:nl), bot_zm ! geometry (mm)
    real(r8) :: rdist(0:nl)                      ! reciprocal node distances across the interfaces (mm-1)
    real(r8) :: sdz(nl), rsdz(nl)                ! dzm / dts (mm s-1) and dts / dzm (s mm-1) of the sub-step
    type(hyd_layer_t) :: hl(nl)                  ! hydraulic constants of the layers (mixed)
    real(r8) :: h0(nl), hn(nl), dh(nl)           ! heads at the sub-step start, trial heads, Newton step (mm)
    real(r8) :: th0(nl), thc(nl)                 ! storage reference (m3 m-3), change over a sub-step (mm)
    real(r8) :: thmin(nl), thmax(nl)             ! liquid content at smpmin and at saturation (m3 m-3)
    real(r8) :: res(nl), q(0:nl), amx(nl), bmx(nl), cmx(nl) ! residual, fluxes (mm s-1), Jacobian (s-1)
    real(r8) :: res_t(nl), q_t(0:nl), a_t(nl), b_t(nl), c_t(nl) ! the same at a trial point
    real(r8) :: resnorm, rn_t                    ! residual norms (m3 m-3)
    real(r8) :: dts, t_done, lam, dsmp, scr, piv ! sub-step (s), time done (s), step length (-), scratch, pivot
    real(r8) :: qt_sum, qb_sum                   ! time-integrated boundary fluxes (mm)
    real(r8) :: kb_top, kb_bot                   ! conductivities at the boundary heads (mm s-1)
    real(r8) :: hc(nl), cst(4, nl)               ! last exact hydraulic evaluation per layer (richards_residual)
    logical :: converged, usable, stalled        ! sub-step converged; Newton matrix usable; heads stopped
    logical :: broad                             ! retry with the broad capacity rule (-)
    integer :: j, it, ls, nhalf, its, nforced    ! layer, iteration, line-search, halving and forced-step counters (-)

    hc = ieee_value(1.0_r8, ieee_quiet_nan)
    cst = 0.0_r8
    do j = 1, nl
      dzm(j) = dz(j) * 1000.0_r8
      zm(j) = z(j) * 1000.0_r8
    end do
    zim = zi * 1000.0_r8
    bot_zm = max(bot_depth, zi(nl)) * 1000.0_r8
    rdist(0) = 1.0_r8 / (zm(1) - zim(0))
    do j = 1, nl - 1
      rdist(j) = 1.0_r8 / (zm(j+1) - zm(j))
    end do
    rdist(nl) = 1.0_r8 / (bot_zm - zm(nl))
    do j = 1, nl
      if (present(hl_in)) then
        hl(j) = hl_in(j)
      else
        hl(j) = hyd_layer(hydr_model, sp(:, j), vol_ice(j))
      end if
      if (present(thmin_in)) then
        thmin(j) = thmin_in(j)
      else
        call layer_state_psi(hl(j), smpmin, thmin(j), scr, dsmp, piv)
      end if
      thmax(j) = min(hl(j)%ths, hl(j)%cap)        ! layer_state_psi at h = 0 (at or above air entry, both models)
      if (h_init /= 1) then
        if (present(h_start)) then
          if (h_start(j) <= 0.0_r8) then
            h(j) = h_start(j)
            if (present(state_start) .and. present(seeded_start)) then
              if (seeded_start(j)) then
                ! the state at that head is known as well: it seeds the evaluation cache (see start_head)
                hc(j) = h(j)
                cst(:, j) = state_start(:, j)
              end if
            end if
          else
            call start_head(hl(j), theta(j), h(j), hc(j), cst(:, j))
          end if
        else
          call start_head(hl(j), theta(j), h(j), hc(j), cst(:, j))
        end if
      end if
      h(j) = max(h(j), smpmin)
    end do
    ! conductivities at the prescribed boundary heads, constant over the solve
    kb_top = 0.0_r8
    kb_bot = 0.0_r8
    if (top_type == TOP_HEAD .or. top_type == TOP_RAIN .or. top_type == TOP_ATMOS) &
      call layer_state_psi(hl(1), merge(top_value, pond_head, top_type == TOP_HEAD), scr, dsmp, kb_top, piv)
    if (bot_type == BOT_HEAD) call layer_state_psi(hl(nl), bot_value, scr, dsmp, kb_bot, piv)
    dwat = 0.0_r8
    qt_sum = 0.0_r8
    qb_sum = 0.0_r8
    nsub = 0
    niter = 0
    ierr = 0
    t_done = 0.0_r8
    dts = dt
    nhalf = 0
    nforced = 0
    h0 = h
    broad = .false.
    do while (dt - t_done > 1.0e-9_r8 * dt)
      dts = min(dts, dt - t_done)
      do j = 1, nl
        sdz(j) = dzm(j) / dts
        rsdz(j) = dts / dzm(j)
      end do
      ! storage reference: the actual content, limited to the range the retention curve can reach, so that
      ! iteration residuals do not accumulate from sub-step to sub-step
      th0 = min(max(theta, thmin), thmax)
      h = h0
      converged = .false.
      its = 0
      call richards_residual(nl, kmean, sdz, rsdz, rdist, hl, th0, sink, &
                             top_type, top_value, pond_head, bot_type, bot_value, kb_top, kb_bot, .true., &
                             broad, h, res, q, amx, bmx, cmx, resnorm, hc, cst)
      do it = 1, maxit
        if (resnorm <= tol_theta) then
          converged = .true.
          exit
        end if
        its = it
        ! the Thomas algorithm has no pivoting: keep the Newton matrix only while no pivot is (nearly) zero,
        ! else use Celia's modified Picard matrix (conductivity derivatives dropped: an M-matrix)
        call tridiag_solve_checked(nl, amx, bmx, cmx, -res, piv_min, dh, usable)
        if (.not. usable) then
          call richards_residual(nl, kmean, sdz, rsdz, rdist, hl, th0, sink, &
                                 top_type, top_value, pond_head, bot_type, bot_value, kb_top, kb_bot, .false., &
                                 broad, h, res, q, amx, bmx, cmx, resnorm, hc, cst)
          call tridiag_solve(nl, amx, bmx, cmx, -res, dh)
        end if
        ! backtracking line search on the residual norm
        lam = 1.0_r8
        do ls = 1, 8
          hn = max(h + lam * dh, smpmin)
          call richards_residual(nl, kmean, sdz, rsdz, rdist, hl, th0, sink, &
                                 top_type, top_value, pond_head, bot_type, bot_value, kb_top, kb_bot, .true., &
                                 broad, hn, res_t, q_t, a_t, b_t, c_t, rn_t, hc, cst)
          if (rn_t < resnorm .or. ls == 8) exit
          lam = 0.5_r8 * lam
        end do
        ! slow progress below the acceptance tolerance ends the iteration (the update is conservative anyway)
        stalled = all(abs(hn - h) < 1.0e-12_r8 * (abs(h) + 1.0_r8)) .or. rn_t > 0.5_r8 * resnorm
        h = hn
        res = res_t
        q = q_t
        amx = a_t
        bmx = b_t
        cmx = c_t
        resnorm = rn_t
        if (resnorm <= tol_theta .or. (stalled .and. resnorm <= tol_stall)) then
          ! converged, or no longer converging with a residual below tol_stall
          converged = .true.
          exit
        end if
      end do
      niter = niter + its
      if (.not. converged .and. .not. broad .and. nhalf == 0 .and. nforced == 0) then
        ! retry the full sub-step once with the broad capacity rule before cutting it
        broad = .true.
        cycle
      end if
      if (converged .or. nhalf >= max_halving .or. nforced >= max_forced) then
        if (.not. converged) then
          ! accepted unconverged (still mass-conservative): try the rest of the step in one go
          ierr = 1
          nforced = nforced + 1
          nhalf = 0
        end if
        ! conservative update from the interface fluxes of the accepted iterate
        do j = 1, nl
          thc(j) = dts * (q(j-1) - q(j) - sink(j))
          dwat(j) = dwat(j) + thc(j)
          theta(j) = theta(j) + thc(j) / dzm(j)
        end do
        qt_sum = qt_sum + q(0) * dts
        qb_sum = qb_sum + q(nl) * dts
        t_done = t_done + dts
        nsub = nsub + 1
        h0 = h
        broad = .false.
        if (.not. converged) then
          dts = dt - t_done
        else if (its <= 4 .and. nhalf > 0) then
          dts = 2.0_r8 * dts
          nhalf = nhalf - 1
        end if
      else
        dts = 0.5_r8 * dts
        nhalf = nhalf + 1
        broad = .false.
      end if
    end do
    h = h0
    q_top = qt_sum / dt
    q_bot = qb_sum / dt

  end subroutine richards_solve

  ! ---------------------------------------------------------------------------------------------------------
  ! Water table depth from the pressure-head profile: the top of the saturated zone, where h reaches the
  ! saturation (air-entry) potential psat of the layer, interpolated linearly between nodes, or extrapolated
  ! hydrostatically (dh/dz = 1) below the bottom node; limited to [0, zi(nl_soil)]. For van Genuchten psat is
  ! -1 mm (the h = 0 water table); for Campbell it is psi_s, so the tension-saturated fringe counts as saturated
  ! (CLM's "depth to the saturated zone").
  pure real(r8) function water_table_from_head(h, psat, z, zi) result(zwt)
    real(r8), intent(in) :: h(nl_soil)           ! pressure head (mm)
    real(r8), intent(in) :: psat(nl_soil)        ! saturation potential of each layer (mm)
    real(r8), intent(in) :: z(nl_soil)           ! node depth (m)
    real(r8), intent(in) :: zi(0:nl_soil)        ! interface depth (m)
    real(r8) :: e(nl_soil)                       ! excess of h over the saturation potential (mm)
    integer :: j                                 ! layer index (-)
    e = h - psat
    if (e(nl_soil) < 0.0_r8) then
      zwt = min(zi(nl_soil), z(nl_soil) - e(nl_soil) / 1000.0_r8)
      return
    end if
    zwt = max(0.0_r8, z(1) - e(1) / 1000.0_r8)
    do j = nl_soil - 1, 1, -1
      if (e(j) < 0.0_r8) then
        zwt = z(j) + (z(j+1) - z(j)) * (-e(j)) / (e(j+1) - e(j))
        exit
      end if
    end do
    zwt = min(max(zwt, 0.0_r8), zi(nl_soil))
  end function water_table_from_head

  ! Specific yield of the aquifer at water table depth zwt (CoLM2014 form generalised to both retention
  ! models): porosity minus the equilibrium content at the potential psi_sat - zwt of the bottom layer.
  pure real(r8) function specific_yield(hl, zwt) result(sy)
    type(hyd_layer_t), intent(in) :: hl          ! hydraulic constants of the ice-free bottom soil layer (mixed)
    real(r8), intent(in) :: zwt                  ! water table depth (m)
    real(r8) :: th, cp, hk, dhk                  ! equilibrium content (m3 m-3), unused outputs
    call layer_state_psi(hl, hl%psis - 1000.0_r8 * zwt, th, cp, hk, dhk)
    sy = max(sy_min, hl%ths - th)
  end function specific_yield

  ! ---------------------------------------------------------------------------------------------------------
  ! One model step of soil water for one column (see the module header and docs/physics-soilwater.md).
  ! Storage convention: wa = WA_MAX (5000 mm) when the water table is at the bottom of the soil column; it is
  ! then "full" and a water table above zi(nl_soil) lives in the soil layers. A consistent initial state is
  ! zwt = zi(nl_soil), wa = 5000 mm; or zwt deeper with wa = 5000 - 1000 * Sy * (zwt - zi(nl_soil)).
  subroutine soil_water(hydr_model, dt, soilpar, dz, z, zi, t_soil, wliq, wice, qgtop, qseva, etr, rootr, &
                        wdsrf, zwt, wa, qsurf, qsub, qinfl, qcharge, ierr, hl0, thmin0, h_start, state_start, &
                        seeded_start)
    integer(ik), intent(in) :: hydr_model            ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: dt                        ! time step (s)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)     ! soil parameters per layer, SP_* (mixed)
    real(r8), intent(in) :: dz(nl_soil)               ! layer thickness (m)
    real(r8), intent(in) :: z(nl_soil)                ! node depth (m)
    real(r8), intent(in) :: zi(0:nl_soil)             ! interface depth, zi(0) = 0 (m)
    real(r8), intent(in) :: t_soil(nl_soil)           ! soil temperature (K); reserved, frozen soil enters via wice
    real(r8), intent(inout) :: wliq(nl_soil)          ! liquid water (kg m-2)
    real(r8), intent(in) :: wice(nl_soil)             ! ice (kg m-2), not changed here
    real(r8), intent(in) :: qgtop                     ! liquid water reaching the soil surface (kg m-2 s-1, >= 0)
    real(r8), intent(in) :: qseva                     ! evaporation from ponding / top layer (kg m-2 s-1, < 0 dew)
    real(r8), intent(in) :: etr                       ! transpiration (kg m-2 s-1, >= 0)
    real(r8), intent(in) :: rootr(nl_soil)            ! fraction of etr drawn from each layer (-)
    real(r8), intent(inout) :: wdsrf                  ! ponded water (kg m-2)
    real(r8), intent(inout) :: zwt                    ! water table depth (m)
    real(r8), intent(inout) :: wa                     ! aquifer water (kg m-2)
    real(r8), intent(out) :: qsurf                    ! surface runoff (kg m-2 s-1)
    real(r8), intent(out) :: qsub                     ! baseflow (kg m-2 s-1)
    real(r8), intent(out) :: qinfl                    ! infiltration into the soil (kg m-2 s-1)
    real(r8), intent(out) :: qcharge                  ! net transfer soil -> aquifer (kg m-2 s-1)
    integer(ik), intent(out) :: ierr                  ! 0 ok; 1 Richards not converged (still conserved); 2 bad input
    type(hyd_layer_t), intent(in), optional :: hl0(nl_soil) ! hyd_layer(hydr_model, soilpar(:,j), 0): the layer
                                                      ! constants without ice, if the caller keeps them (mixed)
    real(r8), intent(in), optional :: thmin0(nl_soil) ! liquid content of those at smpmin (m3 m-3)
    real(r8), intent(in), optional :: h_start(nl_soil) ! matric potential of the current liquid content where known,
                                                      ! 1 elsewhere (mm); requires hl0 (mixed)
    real(r8), intent(in), optional :: state_start(4, nl_soil) ! the hydraulic state at h_start where seeded_start
                                                      ! (layer_state_theta) (mixed)
    logical, intent(in), optional :: seeded_start(nl_soil) ! state_start is given (-)

    real(r8) :: vol_ice(nl_soil), theta(nl_soil)      ! ice and liquid contents (m3 m-3)
    real(r8) :: wcap(nl_soil), wfloor(nl_soil)        ! liquid capacity and driest solvable liquid (mm)
    real(r8) :: wliq0(nl_soil)                        ! liquid at the start of the step (mm)
    real(r8) :: sink(nl_soil), dwat(nl_soil)          ! sinks (mm s-1), solver change (mm)
    real(r8) :: h(nl_soil)                            ! pressure head (mm)
    real(r8) :: psat(nl_soil)                         ! saturation (air-entry) potential per layer (mm)
    type(hyd_layer_t) :: hl(nl_soil)                  ! hydraulic constants of the layers, shared with the solver
    real(r8) :: thmin(nl_soil)                        ! liquid content at smpmin (m3 m-3)
    real(r8) :: scr(3)                                ! unused outputs (capacity, K, dK/dpsi) (mixed)
    real(r8) :: rsum, ewant, take, excess            ! root fraction sum (-), sink bookkeeping (mm)
    real(r8) :: dew, e_pond, e_soil, gwat            ! dew (mm s-1), pond evaporation (mm), soil evaporation, input (mm s-1)
    real(r8) :: fsat, qinmax, qsurf_sat, qpot        ! saturated fraction (-), capacities and fluxes (mm s-1)
    real(r8) :: head_top, q_top, q_bot, dwa, sy      ! surface head (mm), solver fluxes (mm s-1), (mm), (-)
    real(r8) :: fice, dsum, thick, imped, wsat, tmp  ! baseflow ice factor terms (-), (m), (mm), scratch
    real(r8) :: zwt_new                              ! diagnosed water table (m)
    logical :: aquifer_mode, capped                  ! water table below the soil column; aquifer overflowed
    integer(ik) :: nsub, niter, bot_type             ! solver counters, bottom boundary (-)
    integer :: j, k                              ! layer indices (-)

    ierr = 0
    qsurf = 0.0_r8
    qsub = 0.0_r8
    qinfl = 0.0_r8
    qcharge = 0.0_r8
    ! a non-positive temperature marks a corrupted state: refuse it before touching anything
    if (any(t_soil <= 0.0_r8) .or. dt <= 0.0_r8) then
      ierr = 2
      return
    end if
    wdsrf = max(wdsrf, 0.0_r8)
    do j = 1, nl_soil
      vol_ice(j) = max(wice(j), 0.0_r8) / (denice * dz(j))
      theta(j) = wliq(j) / (denh2o * dz(j))
      wcap(j) = max(soilpar(SP_THETA_S, j) - vol_ice(j), 0.0_r8) * dz(j) * 1000.0_r8
      if (present(hl0) .and. present(thmin0) .and. vol_ice(j) <= 0.0_r8) then
        ! (the same values: hyd_layer uses the ice content only through max(vol_ice, 0) and vol_ice > 0)
        hl(j) = hl0(j)
        thmin(j) = thmin0(j)
      else
        hl(j) = hyd_layer(hydr_model, soilpar(:, j), vol_ice(j))
        call layer_state_psi(hl(j), smpmin, thmin(j), scr(1), scr(2), scr(3))
      end if
      wfloor(j) = thmin(j) * dz(j) * 1000.0_r8
      psat(j) = soil_psi_saturation(hydr_model, soilpar(:, j))
    end do
    wliq0 = wliq
    aquifer_mode = zwt >= zi(nl_soil) - 1.0e-9_r8

    ! ---- evaporation from the pond first; dew joins the pond ----
    dew = max(-qseva, 0.0_r8)
    e_pond = min(max(qseva, 0.0_r8) * dt, wdsrf)
    wdsrf = wdsrf - e_pond
    e_soil = max(qseva, 0.0_r8) - e_pond / dt
    ! a negative input (not expected) is taken from the soil like evaporation, keeping the balance
    e_soil = e_soil + max(-qgtop, 0.0_r8)

    ! ---- SIMTOP surface runoff: saturated fraction plus infiltration excess over the top-3-layer capacity ----
    gwat = max(qgtop, 0.0_r8)
    fsat = wtfact * exp(-fsat_decay * zwt)
    qinmax = huge(1.0_r8)
    do j = 1, min(3, nl_soil)
      qinmax = min(qinmax, ice_impedance(vol_ice(j), soilpar(SP_THETA_S, j)) * soilpar(SP_KSAT, j))
    end do
    qsurf_sat = fsat * gwat + (1.0_r8 - fsat) * max(0.0_r8, gwat - qinmax)
    head_top = wdsrf
    wdsrf = wdsrf + (gwat - qsurf_sat + dew) * dt
    qpot = wdsrf / dt

    ! ---- sinks: transpiration by root fraction, soil evaporation from layer 1; shortfalls move down ----
    rsum = sum(max(rootr, 0.0_r8))
    do j = 1, nl_soil
      if (rsum > 0.0_r8) then
        sink(j) = etr * max(rootr(j), 0.0_r8) / rsum * dt
      else
        sink(j) = etr * dz(j) / (zi(nl_soil) - zi(0)) * dt
      end if
    end do
    sink(1) = sink(1) + e_soil * dt
    excess = 0.0_r8
    do j = 1, nl_soil
      ewant = sink(j) + excess
      take = min(ewant, 0.99_r8 * max(wliq(j) - wfloor(j), 0.0_r8))
      excess = ewant - take
      sink(j) = take
    end do
    ! what the soil cannot supply is drawn from the aquifer (capillary supply from groundwater)
    wa = wa - excess
    qcharge = -excess / dt

    ! ---- baseflow (SIMTOP) with an ice factor ----
    if (aquifer_mode) then
      imped = ice_impedance(vol_ice(nl_soil), soilpar(SP_THETA_S, nl_soil))
      qsub = imped * rsbmx * exp(-rsb_decay * zwt)
    else
      ! drawn from the saturated layers below the water table, in proportion to their saturated thickness
      fice = 0.0_r8
      dsum = 0.0_r8
      do j = 1, nl_soil
        thick = zi(j) - max(zwt, zi(j-1))
        if (thick > 0.0_r8) then
          fice = fice + thick * min(1.0_r8, vol_ice(j) / soilpar(SP_THETA_S, j))
          dsum = dsum + thick
        end if
      end do
      imped = exp(-6.0_r8 * log(10.0_r8) * fice / max(dsum, 1.0e-12_r8))
      qsub = imped * rsbmx * exp(-rsb_decay * zwt)
      tmp = 0.0_r8
      do j = 1, nl_soil
        thick = zi(j) - max(zwt, zi(j-1))
        if (thick > 0.0_r8) then
          take = min(qsub * dt * thick / dsum, 0.99_r8 * max(wliq(j) - wfloor(j) - sink(j), 0.0_r8))
          sink(j) = sink(j) + take
          tmp = tmp + take
        end if
      end do
      qsub = tmp / dt
    end if
    do j = 1, nl_soil
      sink(j) = sink(j) / dt
    end do

    ! ---- Richards equation with the ponding-limited infiltration and the groundwater lower boundary ----
    if (aquifer_mode) then
      bot_type = BOT_WATERTABLE
    else
      bot_type = BOT_ZERO
    end if
    call richards_solve(nl_soil, hydr_model, KMEAN_COLUMN, dt, soilpar, dz, z, zi, vol_ice, sink, &
                        TOP_RAIN, qpot, head_top, bot_type, psat(nl_soil), max(zwt, zi(nl_soil)), 0_ik, &
                        theta, h, dwat, q_top, q_bot, nsub, niter, ierr, hl_in=hl, thmin_in=thmin, h_start=h_start, &
                        state_start=state_start, seeded_start=seeded_start)
    do j = 1, nl_soil
      wliq(j) = wliq(j) + dwat(j)
    end do
    qinfl = q_top
    wdsrf = wdsrf - q_top * dt
    if (wdsrf < 0.0_r8) then
      ! round-off only: the soil took marginally more than the pond held
      wliq(1) = wliq(1) + wdsrf
      wdsrf = 0.0_r8
    end if

    ! ---- aquifer: recharge, baseflow, water table via the specific yield ----
    capped = .false.
    if (aquifer_mode) then
      qcharge = qcharge + q_bot
      dwa = (q_bot - qsub) * dt
      wa = wa + dwa
      if (present(hl0)) then
        sy = specific_yield(hl0(nl_soil), zwt)
      else
        sy = specific_yield(hyd_layer(hydr_model, soilpar(:, nl_soil), 0.0_r8), zwt)
      end if
      zwt = min(max(zwt - dwa / (1000.0_r8 * sy), zi(nl_soil)), ZWT_MAX)
      if (wa > WA_MAX) then
        ! a full aquifer returns the excess to the bottom soil layer; the water table enters the column
        excess = wa - WA_MAX
        wa = WA_MAX
        wliq(nl_soil) = wliq(nl_soil) + excess
        qcharge = qcharge - excess / dt
        capped = .true.
      end if
    end if

    ! ---- keep every layer within [0, pore space left by ice]: excess rises, deficits come from below ----
    do j = nl_soil, 1, -1
      tmp = max(wcap(j), wliq0(j))
      if (wliq(j) > tmp) then
        excess = wliq(j) - tmp
        wliq(j) = tmp
        if (j > 1) then
          wliq(j-1) = wliq(j-1) + excess
        else
          wdsrf = wdsrf + excess
        end if
      end if
    end do
    do j = 1, nl_soil
      if (wliq(j) < 0.0_r8) then
        excess = -wliq(j)
        wliq(j) = 0.0_r8
        if (j < nl_soil) then
          wliq(j+1) = wliq(j+1) - excess
        else
          wa = wa - excess
          qcharge = qcharge - excess / dt
        end if
      end if
    end do

    ! ---- ponding limit: the rest runs off ----
    qsurf = qsurf_sat
    if (wdsrf > pondmx) then
      qsurf = qsurf + (wdsrf - pondmx) / dt
      wdsrf = pondmx
    end if

    ! ---- water table inside the soil column: from the pressure-head profile ----
    if (.not. aquifer_mode .or. capped) then
      zwt_new = water_table_from_head(h, psat, z, zi)
      if (capped) then
        ! top of the saturated stack above the bottom, after the aquifer overflow
        k = nl_soil
        do while (k >= 1)
          wsat = sat_frac * wcap(k)
          if (wliq(k) < wsat) exit
          k = k - 1
        end do
        zwt_new = min(zwt_new, zi(k))
      end if
      zwt = min(max(zwt_new, 0.0_r8), zi(nl_soil))
    end if
    zwt = min(max(zwt, 0.0_r8), ZWT_MAX)
  end subroutine soil_water
end module colm_soilwater
