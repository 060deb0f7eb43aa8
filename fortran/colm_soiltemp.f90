! Snow and soil temperature: thermal properties, heat diffusion with a linearised surface flux, and
! energy-conserving phase change with supercooled soil water.
!
! Equations (docs/physics-heat-snow.md):
!   layer heat budget      C_j dT_j/dt = F_{j-1} - F_j,  F_j = g_j (T_j - T_{j+1})  (downward heat flux)
!   series conductance     1/g_j = (zi_j - z_j)/k_j + (z_{j+1} - zi_j)/k_{j+1}  (harmonic interface value)
!   time stepping          Crank-Nicolson (weight cnfac = 0.5) for conduction; the top flux
!                          G = hflx0 + dhflx_dt (T_top^{n+1} - T_top^n) is implicit in its linearisation;
!                          zero flux at the bottom (CoLM, Oleson et al. 2004 CLM3 tech. note sec. 6).
!   soil conductivity      Johansen (1975) as in Farouki (1981) / CLM: k = Ke k_sat + (1 - Ke) k_dry,
!                          Ke = max(0, log10 Sr + 1) unfrozen, Ke = Sr frozen;
!                          k_sat = k_satu^f_liq * k_satf^(1-f_liq) (geometric mean over the water phases)
!   snow conductivity      Jordan (1991): k = k_air + (7.75e-5 rho + 1.105e-6 rho^2)(k_ice - k_air)
!   heat capacity          C = c_sol (1 - theta_s) dz + c_ice w_ice + c_liq w_liq (+ c_ice scv for snow
!                          without layers, carried by the top soil layer as in CoLM)
!   phase change           enthalpy H = C (T - tfrz) + hfus w_liq of each layer is kept exactly; the new
!                          temperature and liquid content solve H(T) = H after diffusion, with the liquid
!                          content of frozen soil limited by the freezing-point depression of the matric
!                          potential, psi = hfus (T - tfrz) / (g T) (Fuchs et al. 1978; Niu & Yang 2006),
!                          inverted with the Campbell (1974) or van Genuchten (1980) retention curve.
module colm_soiltemp
  use colm_const, only: r8, ik, nl_soil, maxsnl, tfrz, hfus, denh2o, denice, cpliq, cpice, tkice, tkair, &
                        grav, cnfac
  use colm_layout, only: NSP, SP_THETA_S, SP_CSOL, SP_TKDRY, SP_TKSATU, SP_TKSATF
  use colm_tridiag, only: tridiag_solve
  use colm_hydraulics, only: has_retention, soil_matric_potential, soil_theta_from_psi, hyd_layer_t, layer_state_psi, &
                             layer_matric_potential
  implicit none
  private
  public :: soilsnow_temperature, column_heat_content, thermal_properties, heat_diffusion_solve, &
            layer_phase_change, supercooled_liquid_max, soil_dry_heat_capacity, soil_thermal_conductivity, &
            snow_thermal_conductivity, layer_enthalpy, layers_heat_step

  real(r8), parameter :: t_lo_ok = 150.0_r8   ! lowest temperature accepted after a step (K)
  real(r8), parameter :: t_hi_ok = 380.0_r8   ! highest temperature accepted after a step (K)
  real(r8), parameter :: w_tol = 1.0e-13_r8   ! relative convergence of the supercooled liquid content (-)

contains

  ! Heat capacity of the soil solids in a layer: SP_CSOL is per m3 of solid material (CLM/CoLM csol).
  pure real(r8) function soil_dry_heat_capacity(sp, dz) result(c0)
    real(r8), intent(in) :: sp(NSP)            ! soil parameters of the layer (mixed units)
    real(r8), intent(in) :: dz                 ! layer thickness (m)
    c0 = sp(SP_CSOL) * (1.0_r8 - sp(SP_THETA_S)) * dz
  end function soil_dry_heat_capacity

  ! Johansen (1975) / Farouki (1981) soil thermal conductivity (CLM form).
  pure real(r8) function soil_thermal_conductivity(sp, dz, t, wliq, wice) result(tk)
    real(r8), intent(in) :: sp(NSP)            ! soil parameters of the layer (mixed units)
    real(r8), intent(in) :: dz                 ! layer thickness (m)
    real(r8), intent(in) :: t                  ! layer temperature (K)
    real(r8), intent(in) :: wliq, wice         ! liquid water and ice in the layer (kg m-2)
    real(r8) :: sr                             ! degree of saturation (-)
    real(r8) :: fl                             ! liquid fraction of the soil water (-)
    real(r8) :: tksat                          ! saturated conductivity for the current phases (W m-1 K-1)
    real(r8) :: ke                             ! Kersten number (-)
    real(r8), parameter :: inv_ln10 = 1.0_r8 / log(10.0_r8) ! (-)
    sr = (wliq / denh2o + wice / denice) / (dz * sp(SP_THETA_S))
    sr = min(1.0_r8, max(0.0_r8, sr))
    if (sr <= 1.0e-7_r8) then
      tk = sp(SP_TKDRY)
      return
    end if
    fl = wliq / (wliq + wice)
    ! geometric mean of the unfrozen and frozen values; the pure phases (most layers) skip the two pows, with
    ! exactly the pow result (x**1 = x, x**0 = 1 in IEEE arithmetic)
    if (fl == 1.0_r8) then
      tksat = sp(SP_TKSATU)
    else if (fl == 0.0_r8) then
      tksat = sp(SP_TKSATF)
    else
      ! (one exp and one log instead of two pows)
      tksat = sp(SP_TKSATF) * exp(fl * log(sp(SP_TKSATU) / sp(SP_TKSATF)))
    end if
    if (t >= tfrz) then
      ! log10 through the natural log (log10 is several times dearer in glibc); Ke = 0 below sr = 0.1
      if (sr > 0.1_r8) then
        ke = log(sr) * inv_ln10 + 1.0_r8
      else
        ke = 0.0_r8
      end if
    else
      ke = sr
    end if
    tk = ke * tksat + (1.0_r8 - ke) * sp(SP_TKDRY)
  end function soil_thermal_conductivity

  ! Jordan (1991) snow thermal conductivity from the bulk snow density.
  pure real(r8) function snow_thermal_conductivity(dz, wliq, wice) result(tk)
    real(r8), intent(in) :: dz                 ! snow layer thickness (m)
    real(r8), intent(in) :: wliq, wice         ! liquid water and ice in the layer (kg m-2)
    real(r8) :: rho                            ! bulk snow density (kg m-3)
    rho = (wliq + wice) / dz
    tk = tkair + (7.75e-5_r8 * rho + 1.105e-6_r8 * rho * rho) * (tkice - tkair)
  end function snow_thermal_conductivity

  ! Heat capacity and conductivity of the snow (snl+1..0) and soil (1..nl_soil) layers; 0 above snl+1.
  pure subroutine thermal_properties(snl, soilpar, dz, t, wliq, wice, scv, cv, tk)
    integer(ik), intent(in) :: snl                       ! minus the number of snow layers (-)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)        ! soil parameters (mixed units)
    real(r8), intent(in) :: dz(maxsnl+1:nl_soil)         ! layer thickness (m)
    real(r8), intent(in) :: t(maxsnl+1:nl_soil)          ! temperature (K)
    real(r8), intent(in) :: wliq(maxsnl+1:nl_soil)       ! liquid water (kg m-2)
    real(r8), intent(in) :: wice(maxsnl+1:nl_soil)       ! ice (kg m-2)
    real(r8), intent(in) :: scv                          ! snow water, all snow (kg m-2)
    real(r8), intent(out) :: cv(maxsnl+1:nl_soil)        ! heat capacity (J m-2 K-1)
    real(r8), intent(out) :: tk(maxsnl+1:nl_soil)        ! thermal conductivity at the node (W m-1 K-1)
    integer :: j
    cv = 0.0_r8
    tk = 0.0_r8
    do j = snl + 1, 0
      cv(j) = cpliq * wliq(j) + cpice * wice(j)
      tk(j) = snow_thermal_conductivity(dz(j), wliq(j), wice(j))
    end do
    do j = 1, nl_soil
      cv(j) = soil_dry_heat_capacity(soilpar(:, j), dz(j)) + cpliq * wliq(j) + cpice * wice(j)
      tk(j) = soil_thermal_conductivity(soilpar(:, j), dz(j), t(j), wliq(j), wice(j))
    end do
    ! snow without layers shares the top soil layer's temperature (CoLM)
    if (snl == 0 .and. scv > 0.0_r8) cv(1) = cv(1) + cpice * scv
  end subroutine thermal_properties

  ! One Crank-Nicolson step of heat conduction over n layers (1 = top), solved for the increments so that
  ! the heat budget closes to round-off. Top flux G = hflx0 + dhflx_dt * dT(1); bottom flux zero.
  pure subroutine heat_diffusion_solve(n, dt, cv, tk, z, zi, t_old, hflx0, dhflx_dt, t_new, gflux)
    integer, intent(in) :: n                   ! number of layers (-)
    real(r8), intent(in) :: dt                 ! time step (s)
    real(r8), intent(in) :: cv(n)              ! heat capacity (J m-2 K-1)
    real(r8), intent(in) :: tk(n)              ! thermal conductivity at the nodes (W m-1 K-1)
    real(r8), intent(in) :: z(n)               ! node depth (m)
    real(r8), intent(in) :: zi(0:n)            ! interface depth, zi(0) top of layer 1 (m)
    real(r8), intent(in) :: t_old(n)           ! temperature at the start of the step (K)
    real(r8), intent(in) :: hflx0              ! downward heat flux into layer 1 at t_old (W m-2)
    real(r8), intent(in) :: dhflx_dt           ! derivative of that flux w.r.t. T(1) (W m-2 K-1)
    real(r8), intent(out) :: t_new(n)          ! temperature at the end of the step (K)
    real(r8), intent(out) :: gflux             ! top flux applied over the step (W m-2)
    real(r8) :: g(0:n)                         ! conductance between nodes j and j+1 (W m-2 K-1)
    real(r8) :: f(0:n)                         ! downward flux across interface j at t_old (W m-2)
    real(r8) :: a(n), b(n), c(n), r(n)         ! tridiagonal system for dT (W m-2 K-1, W m-2)
    real(r8) :: dtem(n)                        ! temperature increment (K)
    integer :: j
    g(0) = 0.0_r8
    g(n) = 0.0_r8
    do j = 1, n - 1
      g(j) = 1.0_r8 / ((zi(j) - z(j)) / tk(j) + (z(j+1) - zi(j)) / tk(j+1))
    end do
    f(0) = hflx0
    f(n) = 0.0_r8
    do j = 1, n - 1
      f(j) = g(j) * (t_old(j) - t_old(j+1))
    end do
    do j = 1, n
      a(j) = -(1.0_r8 - cnfac) * g(j-1)
      c(j) = -(1.0_r8 - cnfac) * g(j)
      b(j) = cv(j) / dt + (1.0_r8 - cnfac) * (g(j-1) + g(j))
      r(j) = f(j-1) - f(j)
    end do
    b(1) = b(1) - dhflx_dt
    call tridiag_solve(n, a, b, c, r, dtem)
    t_new = t_old + dtem
    gflux = hflx0 + dhflx_dt * dtem(1)
  end subroutine heat_diffusion_solve

  ! Largest liquid water content of a frozen soil layer at temperature t, from the matric potential of
  ! water in equilibrium with ice, psi = hfus (t - tfrz) / (g t) (Clausius-Clapeyron, mm), inverted with
  ! the soil's retention curve (colm_hydraulics, no ice cap: the freezing curve is the drying curve).
  ! hydr_model 0 means no supercooling (pure water: no liquid below tfrz).
  pure subroutine supercooled_liquid_max(hydr_model, sp, dz, t, wmax, dwmax_dt, hl0)
    integer(ik), intent(in) :: hydr_model      ! 0 none, 1 Campbell, 2 van Genuchten (-)
    real(r8), intent(in) :: sp(NSP)            ! soil parameters of the layer (mixed units)
    real(r8), intent(in) :: dz                 ! layer thickness (m)
    real(r8), intent(in) :: t                  ! temperature (K)
    real(r8), intent(out) :: wmax              ! maximum liquid water (kg m-2)
    real(r8), intent(out) :: dwmax_dt          ! its derivative w.r.t. t (kg m-2 K-1)
    type(hyd_layer_t), intent(in), optional :: hl0 ! hyd_layer(hydr_model, sp, 0) if the caller has it (mixed)
    real(r8) :: psi                            ! matric potential of unfrozen water (mm)
    real(r8) :: dpsi_dt                        ! d psi / d t (mm K-1)
    real(r8) :: theta, dtheta_dpsi             ! liquid content (m3 m-3) and its derivative (mm-1)
    real(r8) :: hk, dhk                        ! conductivity and derivative, unused (mm s-1, s-1)
    if (t >= tfrz) then
      wmax = sp(SP_THETA_S) * dz * denh2o
      dwmax_dt = 0.0_r8
      return
    end if
    if (.not. has_retention(hydr_model)) then
      wmax = 0.0_r8
      dwmax_dt = 0.0_r8
      return
    end if
    psi = 1000.0_r8 * hfus * (t - tfrz) / (grav * t)
    dpsi_dt = 1000.0_r8 * hfus * tfrz / (grav * t * t)
    if (present(hl0)) then
      call layer_state_psi(hl0, psi, theta, dtheta_dpsi, hk, dhk)     ! the same as soil_theta_from_psi
    else
      call soil_theta_from_psi(hydr_model, sp, psi, 0.0_r8, theta, dtheta_dpsi)
    end if
    wmax = theta * dz * denh2o
    dwmax_dt = dtheta_dpsi * dpsi_dt * dz * denh2o
  end subroutine supercooled_liquid_max

  ! Enthalpy of one layer relative to ice at tfrz (J m-2); c0 is the heat capacity of everything that
  ! is not water (soil solids, or the snow without layers counted as ice).
  pure real(r8) function layer_enthalpy(c0, t, wliq, wice) result(h)
    real(r8), intent(in) :: c0                 ! heat capacity of the non-water part (J m-2 K-1)
    real(r8), intent(in) :: t                  ! temperature (K)
    real(r8), intent(in) :: wliq, wice         ! liquid water and ice (kg m-2)
    h = (c0 + cpliq * wliq + cpice * wice) * (t - tfrz) + hfus * wliq
  end function layer_enthalpy

  ! Residual of the supercooling equilibrium for a trial liquid content wl of a frozen soil layer:
  ! f = T_e(wl) - T_f(wl), T_e = tfrz + (e - hfus wl) / (cfix + c_ice (w - wl) + c_liq wl) from the energy,
  ! T_f = hfus tfrz / (hfus - g psi(wl)) the freezing temperature of water at the matric potential of wl.
  pure subroutine equilibrium_residual(hydr_model, sp, dz, cfix, w, e, wl, f, dfdw, hl0)
    integer(ik), intent(in) :: hydr_model      ! 1 Campbell, 2 van Genuchten (-)
    real(r8), intent(in) :: sp(NSP)            ! soil parameters of the layer (mixed units)
    real(r8), intent(in) :: dz                 ! layer thickness (m)
    real(r8), intent(in) :: cfix               ! capacity that does not depend on the phase split (J m-2 K-1)
    real(r8), intent(in) :: w                  ! total water of the layer (kg m-2)
    real(r8), intent(in) :: e                  ! enthalpy to match (J m-2)
    real(r8), intent(in) :: wl                 ! trial liquid content (kg m-2)
    real(r8), intent(out) :: f                 ! T_e - T_f (K)
    real(r8), intent(out) :: dfdw              ! d f / d wl (K m2 kg-1)
    type(hyd_layer_t), intent(in), optional :: hl0 ! hyd_layer(hydr_model, sp, 0) if the caller has it (mixed)
    real(r8) :: c, te, smp, dsmp, den, tf      ! J m-2 K-1, K, mm, mm, J kg-1, K
    c = cfix + cpice * (w - wl) + cpliq * wl
    te = tfrz + (e - hfus * wl) / c
    if (present(hl0)) then
      call layer_matric_potential(hl0, wl / (dz * denh2o), smp, dsmp)   ! the same as soil_matric_potential
    else
      call soil_matric_potential(hydr_model, sp, wl / (dz * denh2o), 0.0_r8, smp, dsmp)
    end if
    den = hfus - grav * smp * 1.0e-3_r8
    tf = hfus * tfrz / den
    f = te - tf
    dfdw = -(hfus + (cpliq - cpice) * (te - tfrz)) / c &
           - hfus * tfrz * grav * 1.0e-3_r8 / (den * den) * dsmp / (dz * denh2o)
  end subroutine equilibrium_residual

  ! Phase change of one layer after the diffusion solve. The layer's enthalpy (plus, for the top layer,
  ! the change of the surface flux with its temperature, dfb = -dhflx_dt dt) is kept exactly:
  !   (c0 + c_ice s + c_liq wl + c_ice wi)(T - tfrz) + hfus (wl + m) + dfb (T - t_s) = H(t_s, wl0, wi0)
  ! where s is the snow without layers left and m = s0 - s the part melted (it leaves as water at tfrz).
  ! Above tfrz all water is liquid and the snow without layers is melted first; at tfrz ice and liquid
  ! coexist; below tfrz the liquid is min(w, wmax(T)) (supercooled water in soil, none in snow).
  pure subroutine layer_phase_change(hydr_model, sp, dz, c0, dfb, t_s, wl0, wi0, s0, t, wl, wi, s, hl0)
    integer(ik), intent(in) :: hydr_model      ! supercooling: 0 none, 1 Campbell, 2 van Genuchten (-)
    real(r8), intent(in) :: sp(NSP)            ! soil parameters of the layer, unused when 0 (mixed units)
    real(r8), intent(in) :: dz                 ! layer thickness (m)
    real(r8), intent(in) :: c0                 ! heat capacity of soil solids, 0 for snow (J m-2 K-1)
    real(r8), intent(in) :: dfb                ! surface-flux feedback -dhflx_dt*dt, top layer only (J m-2 K-1)
    real(r8), intent(in) :: t_s                ! temperature after the diffusion solve (K)
    real(r8), intent(in) :: wl0, wi0           ! liquid water and ice before phase change (kg m-2)
    real(r8), intent(in) :: s0                 ! snow without layers on this layer before (kg m-2)
    real(r8), intent(out) :: t                 ! temperature after phase change (K)
    real(r8), intent(out) :: wl, wi            ! liquid water and ice after phase change (kg m-2)
    real(r8), intent(out) :: s                 ! snow without layers left (kg m-2)
    type(hyd_layer_t), intent(in), optional :: hl0 ! hyd_layer(hydr_model, sp, 0) if the caller has it (mixed)
    real(r8) :: w                              ! total water of the layer (kg m-2)
    real(r8) :: e                              ! enthalpy to be matched, incl. the flux feedback (J m-2)
    real(r8) :: wlo                            ! liquid at the cold end of the plateau at tfrz (kg m-2)
    real(r8) :: wmax, dwmax                    ! supercooled maximum (kg m-2) and derivative (kg m-2 K-1)
    real(r8) :: ql                             ! liquid (incl. melted snow) at tfrz for this energy (kg m-2)
    real(r8) :: wa, wb, wn                     ! bracket and Newton iterate of the liquid content (kg m-2)
    real(r8) :: fa, fb, dfdw                   ! residual T_e - T_f (K) and its derivative (K kg-1 m2)
    integer :: it
    w = wl0 + wi0
    e = (c0 + cpice * s0 + cpliq * wl0 + cpice * wi0) * (t_s - tfrz) + hfus * wl0 + dfb * (t_s - tfrz)
    call supercooled_liquid_max(hydr_model, sp, dz, tfrz, wmax, dwmax, hl0)   ! saturation at tfrz
    if (has_retention(hydr_model)) then
      wlo = min(w, wmax)
    else
      wlo = 0.0_r8
    end if
    if (e >= hfus * (w + s0)) then
      ! everything melted, the rest warms the layer
      wl = w
      wi = 0.0_r8
      s = 0.0_r8
      t = tfrz + (e - hfus * (w + s0)) / (c0 + cpliq * w + dfb)
    else if (e >= hfus * wlo) then
      ! on the melting plateau: snow without layers melts first, then excess ice
      t = tfrz
      ql = e / hfus
      s = s0 - min(s0, max(0.0_r8, ql - wlo))
      wl = min(w, max(0.0_r8, ql - (s0 - s)))
      wi = w - wl
    else
      ! below tfrz: the liquid content wl solves T_e(wl) = T_f(wl), T_e the temperature the energy gives
      ! (decreasing in wl), T_f the freezing temperature of that liquid content (increasing); the root
      ! in [0, wlo] is found by safeguarded Newton on wl, then T follows exactly from the energy.
      s = s0
      if (.not. has_retention(hydr_model)) then
        wl = 0.0_r8
      else
        wa = 0.0_r8
        wb = wlo
        call equilibrium_residual(hydr_model, sp, dz, c0 + cpice * s0 + dfb, w, e, wb, fb, dfdw, hl0)
        if (fb >= 0.0_r8) then
          wl = wb
        else
          call equilibrium_residual(hydr_model, sp, dz, c0 + cpice * s0 + dfb, w, e, wa, fa, dfdw, hl0)
          if (fa <= 0.0_r8) then
            wl = wa
          else
            wl = min(max(wl0, wa), wb)
            do it = 1, 200
              call equilibrium_residual(hydr_model, sp, dz, c0 + cpice * s0 + dfb, w, e, wl, fa, dfdw, hl0)
              if (fa > 0.0_r8) then
                wa = wl
              else
                wb = wl
              end if
              wn = wl - fa / dfdw
              if (.not. (wn > wa .and. wn < wb)) wn = 0.5_r8 * (wa + wb)
              if (abs(wn - wl) <= w_tol * wlo .or. wb - wa <= w_tol * wlo) then
                wl = wn
                exit
              end if
              wl = wn
            end do
          end if
        end if
      end if
      wi = w - wl
      ! temperature from the exact energy with this liquid content
      t = tfrz + (e - hfus * wl) / (c0 + cpice * (s0 + wi) + cpliq * wl + dfb)
    end if
  end subroutine layer_phase_change

  ! Snow + soil temperature of one column over one step: diffusion, then phase change.
  ! heat_resid = gflux - (sum_j cv_j (T_j,new - T_j,old)/dt + xmf) is round-off, where cv are the solve's
  ! capacities and xmf = sum_j [dwl_j (hfus + (c_liq - c_ice)(T_j - tfrz)) + m (hfus - c_ice (T_1 - tfrz))]/dt
  ! is the latent heat of the phase change at the layers' new temperatures (Kirchhoff's law; equal to
  ! hfus * melt / dt whenever the layer ends at tfrz, which is the usual case).
  subroutine soilsnow_temperature(hydr_model, snl, dt, soilpar, dz, z, zi, t, wliq, wice, scv, snowdp, &
                                  hflx0, dhflx_dt, gflux, xmf, qmelt_nolayer, imelt, heat_resid, ierr, hl0)
    integer(ik), intent(in) :: hydr_model                ! 1 Campbell, 2 van Genuchten-Mualem (-)
    integer(ik), intent(in) :: snl                       ! minus the number of snow layers (-)
    real(r8), intent(in) :: dt                           ! time step (s)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)        ! soil parameters (mixed units)
    real(r8), intent(in) :: dz(maxsnl+1:nl_soil)         ! layer thickness (m)
    real(r8), intent(in) :: z(maxsnl+1:nl_soil)          ! node depth (m)
    real(r8), intent(in) :: zi(maxsnl:nl_soil)           ! interface depth (m)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)       ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)    ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)    ! ice (kg m-2)
    real(r8), intent(inout) :: scv                       ! snow water, all snow (kg m-2)
    real(r8), intent(inout) :: snowdp                    ! snow depth (m)
    real(r8), intent(in) :: hflx0                        ! net downward heat flux into the top layer at old T (W m-2)
    real(r8), intent(in) :: dhflx_dt                     ! its derivative w.r.t. the top-layer T, <= 0 (W m-2 K-1)
    real(r8), intent(out) :: gflux                       ! heat flux applied at the top (W m-2)
    real(r8), intent(out) :: xmf                         ! energy used by phase change, melt positive (W m-2)
    real(r8), intent(out) :: qmelt_nolayer               ! melt of snow without layers (kg m-2 s-1)
    integer(ik), intent(out) :: imelt(maxsnl+1:nl_soil)  ! 1 melt, 2 freeze, 0 none (-)
    real(r8), intent(out) :: heat_resid                  ! gflux - (sum cv dT/dt + xmf) (W m-2)
    integer(ik), intent(out) :: ierr                     ! 0 ok, 1 bad input, 2 dhflx_dt > 0, 3 T out of range (-)
    type(hyd_layer_t), intent(in), optional :: hl0(nl_soil) ! hyd_layer(hydr_model, soilpar(:,j), 0) (mixed)
    real(r8) :: cv(maxsnl+1:nl_soil)                     ! heat capacity of the solve (J m-2 K-1)
    real(r8) :: tk(maxsnl+1:nl_soil)                     ! thermal conductivity (W m-1 K-1)
    real(r8) :: t_old(maxsnl+1:nl_soil)                  ! temperature at the start (K)
    real(r8) :: t_s(maxsnl+1:nl_soil)                    ! temperature after diffusion (K)
    real(r8) :: gsolve                                   ! top flux of the diffusion solve (W m-2)
    real(r8) :: c0                                       ! heat capacity of the solids (J m-2 K-1)
    real(r8) :: s0, s                                    ! snow without layers before / after (kg m-2)
    real(r8) :: dfb                                      ! surface-flux feedback (J m-2 K-1)
    real(r8) :: wl, wi, tn                               ! new liquid, ice (kg m-2), temperature (K)
    real(r8) :: wmax, dwmax                              ! supercooled maximum (kg m-2, kg m-2 K-1)
    real(r8) :: dsens                                    ! sum of cv dT (J m-2)
    real(r8) :: xm                                       ! latent heat used (J m-2)
    integer(ik) :: model                                 ! supercooling model of the layer (-)
    integer :: j, lb, n
    logical :: act                                       ! the layer needs a phase-change update
    ierr = 0
    gflux = 0.0_r8
    xmf = 0.0_r8
    qmelt_nolayer = 0.0_r8
    imelt = 0
    heat_resid = 0.0_r8
    if (snl < maxsnl .or. snl > 0 .or. .not. (dt > 0.0_r8)) then
      ierr = 1
      return
    end if
    if (dhflx_dt > 0.0_r8) then
      ierr = 2
      return
    end if
    lb = snl + 1
    n = nl_soil - lb + 1
    call thermal_properties(snl, soilpar, dz, t, wliq, wice, scv, cv, tk)
    t_old = t
    call heat_diffusion_solve(n, dt, cv(lb:), tk(lb:), z(lb:), zi(lb-1:), t_old(lb:), hflx0, dhflx_dt, &
                              t_s(lb:), gsolve)
    xm = 0.0_r8
    do j = lb, nl_soil
      if (j >= 1) then
        c0 = soil_dry_heat_capacity(soilpar(:, j), dz(j))
        model = hydr_model
      else
        c0 = 0.0_r8
        model = 0
      end if
      s0 = 0.0_r8
      if (j == 1 .and. snl == 0) s0 = max(0.0_r8, scv)
      dfb = 0.0_r8
      if (j == lb) dfb = -dhflx_dt * dt
      ! decide whether the layer is out of phase equilibrium
      if (t_s(j) > tfrz) then
        act = wice(j) > 0.0_r8 .or. s0 > 0.0_r8
      else if (j >= 1) then
        if (present(hl0)) then
          call supercooled_liquid_max(model, soilpar(:, j), dz(j), t_s(j), wmax, dwmax, hl0(j))
        else
          call supercooled_liquid_max(model, soilpar(:, j), dz(j), t_s(j), wmax, dwmax)
        end if
        wl = min(wliq(j) + wice(j), wmax)
        act = abs(wliq(j) - wl) > 1.0e-12_r8 * (wliq(j) + wice(j)) .and. &
              (wliq(j) > wl .or. wice(j) > 0.0_r8)
      else
        act = wliq(j) > 0.0_r8 .and. t_s(j) < tfrz
      end if
      if (.not. act) then
        t(j) = t_s(j)
        cycle
      end if
      if (present(hl0) .and. j >= 1) then
        call layer_phase_change(model, soilpar(:, j), dz(j), c0, dfb, t_s(j), &
                                wliq(j), wice(j), s0, tn, wl, wi, s, hl0(j))
      else
        call layer_phase_change(model, soilpar(:, min(max(j, 1), nl_soil)), dz(j), c0, dfb, t_s(j), &
                                wliq(j), wice(j), s0, tn, wl, wi, s)
      end if
      ! latent heat at the new temperature (Kirchhoff), so that the enthalpy balance is exact
      xm = xm + (wl - wliq(j)) * (hfus + (cpliq - cpice) * (tn - tfrz)) + (s0 - s) * (hfus - cpice * (tn - tfrz))
      if (wl > wliq(j) .or. s < s0) then
        imelt(j) = 1
      else if (wl < wliq(j)) then
        imelt(j) = 2
      end if
      if (s < s0) then
        qmelt_nolayer = (s0 - s) / dt
        if (s > 0.0_r8) then
          snowdp = snowdp * (s / s0)
        else
          snowdp = 0.0_r8
        end if
        scv = s
      end if
      t(j) = tn
      wliq(j) = wl
      wice(j) = wi
    end do
    xmf = xm / dt
    gflux = hflx0 + dhflx_dt * (t(lb) - t_old(lb))
    dsens = 0.0_r8
    do j = lb, nl_soil
      dsens = dsens + cv(j) * (t(j) - t_old(j))
    end do
    heat_resid = gflux - (dsens / dt + xmf)
    do j = lb, nl_soil
      if (.not. (t(j) > t_lo_ok .and. t(j) < t_hi_ok)) ierr = 3
    end do
  end subroutine soilsnow_temperature

  ! Heat content of the snow + soil column relative to ice at tfrz (J m-2), including the latent heat of
  ! the liquid water and the snow without layers (as ice at the top soil temperature).
  pure real(r8) function column_heat_content(snl, soilpar, dz, t, wliq, wice, scv) result(h)
    integer(ik), intent(in) :: snl                       ! minus the number of snow layers (-)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)        ! soil parameters (mixed units)
    real(r8), intent(in) :: dz(maxsnl+1:nl_soil)         ! layer thickness (m)
    real(r8), intent(in) :: t(maxsnl+1:nl_soil)          ! temperature (K)
    real(r8), intent(in) :: wliq(maxsnl+1:nl_soil)       ! liquid water (kg m-2)
    real(r8), intent(in) :: wice(maxsnl+1:nl_soil)       ! ice (kg m-2)
    real(r8), intent(in) :: scv                          ! snow water, all snow (kg m-2)
    integer :: j
    h = 0.0_r8
    do j = snl + 1, 0
      h = h + layer_enthalpy(0.0_r8, t(j), wliq(j), wice(j))
    end do
    do j = 1, nl_soil
      h = h + layer_enthalpy(soil_dry_heat_capacity(soilpar(:, j), dz(j)), t(j), wliq(j), wice(j))
    end do
    if (snl == 0 .and. scv > 0.0_r8) h = h + cpice * scv * (t(1) - tfrz)
  end function column_heat_content

  ! One step of heat conduction with optional phase change (pure water, no supercooling) on n arbitrary
  ! layers with prescribed solid heat capacity and unfrozen / frozen conductivities. Verification only:
  ! it runs heat_diffusion_solve and layer_phase_change, the same code as the column.
  pure subroutine layers_heat_step(n, dt, dz, z, zi, c0, tku, tkf, iphase, t, wliq, wice, hflx0, dhflx_dt, &
                                   gflux, xmf, heat_resid)
    integer, intent(in) :: n                   ! number of layers (-)
    real(r8), intent(in) :: dt                 ! time step (s)
    real(r8), intent(in) :: dz(n)              ! layer thickness (m)
    real(r8), intent(in) :: z(n)               ! node depth (m)
    real(r8), intent(in) :: zi(0:n)            ! interface depth (m)
    real(r8), intent(in) :: c0(n)              ! heat capacity of the solids (J m-2 K-1)
    real(r8), intent(in) :: tku(n), tkf(n)     ! conductivity with all water liquid / frozen (W m-1 K-1)
    integer, intent(in) :: iphase              ! 1 with phase change, 0 without (-)
    real(r8), intent(inout) :: t(n)            ! temperature (K)
    real(r8), intent(inout) :: wliq(n), wice(n) ! liquid water, ice (kg m-2)
    real(r8), intent(in) :: hflx0              ! top flux at the old temperature (W m-2)
    real(r8), intent(in) :: dhflx_dt           ! its derivative w.r.t. T(1) (W m-2 K-1)
    real(r8), intent(out) :: gflux             ! top flux applied (W m-2)
    real(r8), intent(out) :: xmf               ! latent heat of the phase change (W m-2)
    real(r8), intent(out) :: heat_resid        ! gflux - (sum cv dT/dt + xmf) (W m-2)
    real(r8) :: cv(n), tk(n), t_old(n), t_s(n) ! capacity (J m-2 K-1), conductivity (W m-1 K-1), T (K)
    real(r8) :: fl                             ! liquid fraction (-)
    real(r8) :: sp(NSP)                        ! unused soil parameters (mixed units)
    real(r8) :: tn, wl, wi, s, dfb, xm         ! K, kg m-2, kg m-2, kg m-2, J m-2 K-1, J m-2
    integer :: j
    sp = 0.0_r8
    do j = 1, n
      cv(j) = c0(j) + cpliq * wliq(j) + cpice * wice(j)
      fl = 1.0_r8
      if (wliq(j) + wice(j) > 0.0_r8) fl = wliq(j) / (wliq(j) + wice(j))
      tk(j) = fl * tku(j) + (1.0_r8 - fl) * tkf(j)
    end do
    t_old = t
    call heat_diffusion_solve(n, dt, cv, tk, z, zi, t_old, hflx0, dhflx_dt, t_s, gflux)
    xm = 0.0_r8
    t = t_s
    if (iphase == 1) then
      do j = 1, n
        if ((t_s(j) > tfrz .and. wice(j) > 0.0_r8) .or. (t_s(j) < tfrz .and. wliq(j) > 0.0_r8)) then
          dfb = 0.0_r8
          if (j == 1) dfb = -dhflx_dt * dt
          call layer_phase_change(0_ik, sp, dz(j), c0(j), dfb, t_s(j), wliq(j), wice(j), 0.0_r8, tn, wl, wi, s)
          xm = xm + (wl - wliq(j)) * (hfus + (cpliq - cpice) * (tn - tfrz))
          t(j) = tn
          wliq(j) = wl
          wice(j) = wi
        end if
      end do
    end if
    xmf = xm / dt
    gflux = hflx0 + dhflx_dt * (t(1) - t_old(1))
    heat_resid = gflux - (sum(cv * (t - t_old)) / dt + xmf)
  end subroutine layers_heat_step
end module colm_soiltemp
