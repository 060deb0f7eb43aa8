! Canopy hydrology and the surface energy balance of one column (CoLM-style, Dai et al. 2003, 2004).
!
! - canopy_interception: interception fraction f_pi = 0.25 (1 - exp(-0.5 (L+S))) (CLM4.5, Oleson et al. 2013,
!   Eq. 7.2), storage capacity dewmx (L+S) with dewmx = 0.1 kg m-2 per unit LAI+SAI (CoLM / CLM); water above
!   capacity drips in the rain/snow proportion of the incoming precipitation. Wet leaf fraction
!   f_wet = (ldew / (dewmx (L+S)))^(2/3) <= 1 (Deardorff 1978; CLM, CoLM).
! - soil_water_stress: per layer w_j = (eff_porosity/theta_s) (smp_c - smp_j)/(smp_c - smp_o) in [0, 1]
!   for unfrozen layers with liquid water (CLM4.5 Eqs. 8.26-8.27); btran = sum rootfr_j w_j, rootr_j = rootfr_j w_j / btran.
! - soil_evap_resistance: dry-surface-layer resistance of Swenson and Lawrence (2014) (CLM5 and CoLM202X's
!   scheme 1, "SL14"), r_ss = DSL / (D_0 tau), DSL = dz_1 (0.8 eff_porosity - theta_liq)/(0.8 theta_s - theta_airdry)
!   in [0, 0.2 m], D_0 = 2.12e-5 (T/273.15)^1.75 m2 s-1, tau = eps^2 (eps/theta_s)^(3/max(b, 3)) (Moldrup BBC
!   tortuosity), eps = theta_s - theta_airdry, theta_airdry at -1e7 mm. Soil pore humidity
!   h_r = exp(g psi / (R_v T)) from soil_matric_potential; when h_r q_sat(T) < q_air < q_sat(T) the soil neither
!   evaporates nor adsorbs (q_soil = q_air, CLM4.5). No soil resistance over snow or for dew.
! - surface_fluxes: leaf temperature by Newton-Raphson on the leaf energy balance with the canopy air space of
!   CLM/CoLM (Oleson et al. 2013 ch. 5; Dai et al. 2004): conductances canopy-air <-> atmosphere (Monin-Obukhov,
!   colm_turbulence), leaves <-> canopy air (L+S)/r_b with r_b = 1/(0.01 sqrt(u*/d_leaf)), ground <-> canopy air
!   1/r_d with r_d = 1/(C_s u*), C_s = C_s,bare W + csoilc (1 - W), W = exp(-(L+S)), C_s,bare =
!   k / (0.13 (z0mg u*/nu)^0.45) (Zeng et al. 2005, CLM4.5/CoLM). Sparse-canopy displacement and roughness
!   (X. Zeng, CoLM): weights e = (1 - exp(-min(L+S, 2)))/(1 - exp(-2)). Forcing height at least htop + 1 m (CoLM).
!   Sunlit/shaded stomatal resistances from colm_photosynthesis at every iteration; wet leaves evaporate with
!   conductance f_wet (L+S)/r_b (limited to the stored water afterwards, in update_ground_fluxes, as CoLM limits
!   it after the iteration), dry leaves transpire with
!   (1 - f_wet)(L_sun/(r_b + r_s,sun) + L_sha/(r_b + r_s,sha)); dew forms on all of (L+S) when q_sat(T_v) < q_af.
!   Iteration control of CoLM202X: at least 6, at most 40 iterations, |dT| <= 3 K per step, converged when the
!   last two leaf temperature changes are < 0.01 K and latent heat changes < 0.1 W m-2. Safeguards added here:
!   a step that reverses the previous one is at most half as long, and the Obukhov length is under-relaxed
!   when it oscillates (colm_turbulence%relax_obukhov); both only act on two-cycles of the lagged iteration.
!   After the iteration the leaf balance is solved exactly (safeguarded Newton) at the resistances and
!   stomatal conductances of the last iteration, which lag one iteration as in CoLM.
!   Longwave: canopy emissivity e_v = 1 - exp(-(L+S)) (mu_bar = 1), ground emissivity 0.96 (soil) / 0.97
!   (snow) weighted by the snow fraction; the canopy absorbs e_v of the sky and ground streams and emits from
!   both faces; the ground reflects (1 - e_g) of what reaches it.
!   Bare ground (VP_ISVEG = 0 or L+S < lsai_min): ground-only fluxes with MO stability over z0 = zlnd / zsno
!   (weighted by the snow fraction) and Zeng-Dickinson (1998) thermal roughness.
! - Surface energy balance closure (see update_ground_fluxes): the heat solver receives hflx0 + dhflx_dt dT; the
!   ground fluxes are then re-evaluated linearly at the new temperature with the same derivatives, so the ground
!   balance closes identically; water-limited evaporation moves the excess energy into sensible heat; the leaf
!   residual (Newton residual at convergence plus the canopy-absorbed change of ground emission) is moved into
!   the canopy sensible heat. SWnet + LWnet - Qh - Qle - G is then zero to round-off.
module colm_canopy
  use colm_const
  use colm_layout
  use colm_turbulence, only: mo_profile, obukhov_initial, obukhov_update, relax_obukhov, log_z0m_z0h, qsat
  use colm_radiation, only: surface_rad_t, is_vegetated
  use colm_photosynthesis, only: leaf_photosynthesis, mol_to_kgc, photo_temperature, photo_temp_t
  use colm_hydraulics, only: soil_matric_potential, hyd_layer_t, layer_matric_potential, layer_state_theta
  implicit none
  private
  public :: surface_flux_t, canopy_interception, wet_fraction, effective_lai_sai, soil_water_stress
  public :: soil_evap_resistance, soil_evap_params, surface_fluxes, update_ground_fluxes
  public :: dewmx, co2_default_ppm, emg_soil, emg_snow

  real(r8), parameter :: dewmx = 0.1_r8           ! interception capacity per unit LAI+SAI (kg m-2)
  real(r8), parameter :: fpi_scale = 0.25_r8      ! interception efficiency scale (-), CLM4.5
  real(r8), parameter :: co2_default_ppm = 400.0_r8 ! atmospheric CO2 mole fraction (umol mol-1)
  real(r8), parameter :: emg_soil = 0.96_r8       ! emissivity of soil (-)
  real(r8), parameter :: emg_snow = 0.97_r8       ! emissivity of snow (-)
  real(r8), parameter :: cv_leaf = 0.01_r8        ! leaf boundary-layer transfer coefficient (m s-1/2)
  integer, parameter :: itmax = 40                ! maximum leaf temperature iterations (-)
  integer, parameter :: itmin = 6                 ! minimum leaf temperature iterations (-)
  real(r8), parameter :: delmax = 3.0_r8          ! largest leaf temperature step (K)
  real(r8), parameter :: dtmin = 0.01_r8          ! leaf temperature convergence (K)
  real(r8), parameter :: dlemin = 0.1_r8          ! latent heat convergence (W m-2)
  integer, parameter :: itmax_bare = 10           ! stability iterations over bare ground (-)

  ! Surface fluxes of one column. "0" components are at the top-layer temperature t_top0 before the heat
  ! solve; the others are final after update_ground_fluxes (equal to the "0" ones until it is called).
  ! Sign convention: radiation downward positive; sensible, latent heat and evaporation upward positive;
  ! G downward (into the top snow/soil layer) positive.
  type :: surface_flux_t
    integer :: vegetated = 0                       ! 1 if canopy fluxes were computed (-)
    integer :: niter = 0                           ! leaf temperature iterations used (-)
    real(r8) :: t_top0 = 0.0_r8                    ! top-layer temperature the fluxes were evaluated at (K)
    real(r8) :: tleaf = 0.0_r8                     ! leaf temperature (K)
    real(r8) :: taf = 0.0_r8                       ! canopy air temperature (K)
    real(r8) :: qaf = 0.0_r8                       ! canopy air specific humidity (kg kg-1)
    real(r8) :: rhoair = 0.0_r8                    ! air density (kg m-3)
    real(r8) :: sabv = 0.0_r8                      ! shortwave absorbed by vegetation (W m-2)
    real(r8) :: sabg = 0.0_r8                      ! shortwave absorbed by the ground (W m-2)
    real(r8) :: lwdown = 0.0_r8                    ! downward longwave at the reference height (W m-2)
    real(r8) :: emv = 0.0_r8                       ! canopy emissivity (-)
    real(r8) :: emg = 0.0_r8                       ! ground emissivity (-)
    real(r8) :: lw_below = 0.0_r8                  ! longwave reaching the ground from sky and canopy (W m-2)
    real(r8) :: lwg_emit0 = 0.0_r8                 ! ground emission at t_top0 (W m-2)
    real(r8) :: dlwg_dt = 0.0_r8                   ! d(ground emission)/dT_top (W m-2 K-1)
    real(r8) :: lwg_emit = 0.0_r8                  ! ground emission, final (W m-2)
    real(r8) :: hv0 = 0.0_r8                       ! canopy sensible heat incl. the convergence residual (W m-2)
    real(r8) :: hv = 0.0_r8                        ! canopy sensible heat, final (W m-2)
    real(r8) :: fevpl0 = 0.0_r8                    ! evaporation of intercepted water before limiting (kg m-2 s-1)
    real(r8) :: fevpl = 0.0_r8                     ! evaporation of intercepted water, < 0 dew (kg m-2 s-1)
    real(r8) :: etr = 0.0_r8                       ! transpiration (kg m-2 s-1)
    real(r8) :: htvp_v = hvap                      ! latent heat of canopy water exchange (J kg-1)
    real(r8) :: hg0 = 0.0_r8                       ! ground sensible heat at t_top0 (W m-2)
    real(r8) :: dhg_dt = 0.0_r8                    ! d hg / dT_top (W m-2 K-1)
    real(r8) :: hg = 0.0_r8                        ! ground sensible heat, final (W m-2)
    real(r8) :: fevpg_snow0 = 0.0_r8               ! ground evaporation from the snow-covered part at t_top0 (kg m-2 s-1)
    real(r8) :: fevpg_soil0 = 0.0_r8               ! ground evaporation from the snow-free soil at t_top0 (kg m-2 s-1)
    real(r8) :: dfevpg_snow_dt = 0.0_r8            ! d fevpg_snow / dT_top (kg m-2 s-1 K-1)
    real(r8) :: dfevpg_soil_dt = 0.0_r8            ! d fevpg_soil / dT_top (kg m-2 s-1 K-1)
    real(r8) :: fevpg_snow = 0.0_r8                ! ground evaporation from snow, final (kg m-2 s-1)
    real(r8) :: fevpg_soil = 0.0_r8                ! ground evaporation from soil, final (kg m-2 s-1)
    real(r8) :: fevpg = 0.0_r8                     ! ground evaporation, final, < 0 dew/frost (kg m-2 s-1)
    real(r8) :: htvp_g = hvap                      ! latent heat of ground water exchange (J kg-1)
    real(r8) :: hflx0 = 0.0_r8                     ! net downward heat flux into the top layer at t_top0 (W m-2)
    real(r8) :: dhflx_dt = 0.0_r8                  ! d hflx / dT_top, <= 0 (W m-2 K-1)
    real(r8) :: leaf_res_conv = 0.0_r8             ! leaf energy balance residual at convergence (W m-2)
    real(r8) :: leaf_res = 0.0_r8                  ! all leaf imbalance moved into hv, final (W m-2)
    real(r8) :: btran = 0.0_r8                     ! soil water stress factor (-)
    real(r8) :: rootr(nl_soil) = 0.0_r8            ! fraction of transpiration from each soil layer (-)
    real(r8) :: smp_root(nl_soil) = 1.0_r8         ! matric potential soil_water_stress used, 1 where none (mm)
    real(r8) :: state_root(4, nl_soil) = 0.0_r8    ! hydraulic state at smp_root where layer_state_theta gave it:
                                                   ! theta (-), capacity (mm-1), K (mm s-1), dK/dh (s-1)
    logical :: seeded_root(nl_soil) = .false.      ! state_root holds that state (-)
    real(r8) :: rs_sun = 0.0_r8                    ! sunlit stomatal resistance (s m-1)
    real(r8) :: rs_sha = 0.0_r8                    ! shaded stomatal resistance (s m-1)
    real(r8) :: an_sun = 0.0_r8                    ! sunlit net assimilation per leaf area (mol CO2 m-2 s-1)
    real(r8) :: an_sha = 0.0_r8                    ! shaded net assimilation per leaf area (mol CO2 m-2 s-1)
    real(r8) :: gpp = 0.0_r8                       ! gross primary production (kg C m-2 s-1)
    real(r8) :: fwet = 0.0_r8                      ! wet fraction of the canopy (-)
    real(r8) :: rb = 0.0_r8                        ! leaf boundary-layer resistance (s m-1)
    real(r8) :: rd = 0.0_r8                        ! ground to canopy-air resistance (s m-1)
    real(r8) :: rss = 0.0_r8                       ! soil surface resistance of layer 1, SL14 (applied only to evaporation) (s m-1)
    real(r8) :: ustar = 0.0_r8                     ! friction velocity (m s-1)
    real(r8) :: obu = 0.0_r8                       ! Obukhov length (m)
    real(r8) :: ram = 0.0_r8                       ! aerodynamic resistance, momentum (s m-1)
    real(r8) :: rah = 0.0_r8                       ! aerodynamic resistance, heat (s m-1)
    real(r8) :: raw = 0.0_r8                       ! aerodynamic resistance, vapour (s m-1)
    real(r8) :: swnet = 0.0_r8                     ! net shortwave (W m-2)
    real(r8) :: lwup = 0.0_r8                      ! upward longwave at the top (W m-2)
    real(r8) :: lwnet = 0.0_r8                     ! net longwave, downward (W m-2)
    real(r8) :: qh = 0.0_r8                        ! sensible heat, upward (W m-2)
    real(r8) :: qle = 0.0_r8                       ! latent heat, upward (W m-2)
    real(r8) :: g = 0.0_r8                         ! heat flux into the top layer, applied by the heat solver (W m-2)
    real(r8) :: evap = 0.0_r8                      ! total evapotranspiration (kg m-2 s-1)
    real(r8) :: trad = 0.0_r8                      ! radiative surface temperature (K)
    real(r8) :: ebal_err = 0.0_r8                  ! SWnet + LWnet - Qh - Qle - G (W m-2)
    real(r8) :: excess_ground = 0.0_r8             ! ground evaporation removed by the water limit (kg m-2 s-1)
    real(r8) :: excess_canopy = 0.0_r8             ! canopy evaporation removed by the water limit (kg m-2 s-1)
  end type surface_flux_t

contains

  ! Canopy interception of rain and snow, drip and throughfall (header). Water conservation is exact:
  ! ldew_new - ldew_old = (rain + snow - rain_ground - snow_ground) dt.
  pure subroutine canopy_interception(dt, lai, sai, isveg, rain, snow, ldew, rain_ground, snow_ground)
    real(r8), intent(in) :: dt                      ! time step (s)
    real(r8), intent(in) :: lai                     ! leaf area index (m2 m-2)
    real(r8), intent(in) :: sai                     ! stem area index (m2 m-2)
    real(r8), intent(in) :: isveg                   ! VP_ISVEG flag (-)
    real(r8), intent(in) :: rain                    ! rainfall above the canopy (kg m-2 s-1)
    real(r8), intent(in) :: snow                    ! snowfall above the canopy (kg m-2 s-1)
    real(r8), intent(inout) :: ldew                 ! water intercepted on the canopy (kg m-2)
    real(r8), intent(out) :: rain_ground            ! rain reaching the ground, throughfall + drip (kg m-2 s-1)
    real(r8), intent(out) :: snow_ground            ! snow reaching the ground (kg m-2 s-1)
    real(r8) :: lsai                                ! LAI + SAI (m2 m-2)
    real(r8) :: fpi                                 ! intercepted fraction (-)
    real(r8) :: satcap                              ! storage capacity (kg m-2)
    real(r8) :: excess                              ! water above capacity (kg m-2)
    real(r8) :: frain                               ! rain fraction of the drip (-)
    if (.not. is_vegetated(isveg, lai, sai)) then
      ! no canopy: anything still stored drips off as rain
      rain_ground = rain + max(ldew, 0.0_r8) / dt
      snow_ground = snow
      ldew = 0.0_r8
      return
    end if
    lsai = lai + sai
    fpi = fpi_scale * (1.0_r8 - exp(-0.5_r8 * lsai))
    satcap = dewmx * lsai
    ldew = max(ldew, 0.0_r8) + fpi * (rain + snow) * dt
    excess = max(ldew - satcap, 0.0_r8)
    ldew = ldew - excess
    if (rain + snow > 0.0_r8) then
      frain = rain / (rain + snow)
    else
      frain = 1.0_r8
    end if
    rain_ground = (1.0_r8 - fpi) * rain + frain * excess / dt
    snow_ground = (1.0_r8 - fpi) * snow + (1.0_r8 - frain) * excess / dt
  end subroutine canopy_interception

  ! Wet fraction of the canopy (Deardorff 1978), 0 when nothing is stored.
  pure real(r8) function wet_fraction(ldew, lai, sai)
    real(r8), intent(in) :: ldew                    ! intercepted water (kg m-2)
    real(r8), intent(in) :: lai, sai                ! leaf and stem area index (m2 m-2)
    if (ldew > 0.0_r8 .and. lai + sai > 0.0_r8) then
      wet_fraction = min(1.0_r8, (ldew / (dewmx * (lai + sai)))**(2.0_r8 / 3.0_r8))
    else
      wet_fraction = 0.0_r8
    end if
  end function wet_fraction

  ! LAI and SAI above the snow: the buried fraction min(1, snow depth / canopy height) is removed
  ! (CLM's burial with the canopy bottom at the ground). Optional helper for the column step.
  pure subroutine effective_lai_sai(htop, snowdp, lai, sai, elai, esai)
    real(r8), intent(in) :: htop                    ! canopy top height (m)
    real(r8), intent(in) :: snowdp                  ! snow depth (m)
    real(r8), intent(in) :: lai, sai                ! leaf and stem area index (m2 m-2)
    real(r8), intent(out) :: elai, esai             ! exposed leaf and stem area index (m2 m-2)
    real(r8) :: fb                                  ! buried fraction (-)
    fb = min(1.0_r8, max(snowdp, 0.0_r8) / max(htop, 0.01_r8))
    elai = lai * (1.0_r8 - fb)
    esai = sai * (1.0_r8 - fb)
  end subroutine effective_lai_sai

  ! Soil water stress factor and the root-water-uptake distribution (header).
  pure subroutine soil_water_stress(vegpar, soilpar, hydr_model, t_soil, wliq_soil, wice_soil, dz_soil, btran, rootr, &
                                    hl0, smp_out, state_out, seeded_out)
    real(r8), intent(in) :: vegpar(NVP)             ! PFT parameters VP_* (mixed)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)   ! soil parameters SP_* per layer (mixed)
    integer(ik), intent(in) :: hydr_model           ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: t_soil(nl_soil)         ! soil temperature (K)
    real(r8), intent(in) :: wliq_soil(nl_soil)      ! soil liquid water (kg m-2)
    real(r8), intent(in) :: wice_soil(nl_soil)      ! soil ice (kg m-2)
    real(r8), intent(in) :: dz_soil(nl_soil)        ! soil layer thickness (m)
    real(r8), intent(out) :: btran                  ! soil water stress factor (-)
    real(r8), intent(out) :: rootr(nl_soil)         ! fraction of uptake from each layer, sums to 1 if btran > 0 (-)
    type(hyd_layer_t), intent(in), optional :: hl0(nl_soil) ! hyd_layer of the layers without ice (mixed)
    real(r8), intent(out), optional :: smp_out(nl_soil) ! matric potential of the ice-free layers evaluated with
                                                    ! hl0 (as soil_water's solver would), 1 elsewhere (mm)
    real(r8), intent(out), optional :: state_out(4, nl_soil) ! with smp_out: the hydraulic state at smp_out where
                                                    ! layer_state_theta gives it (see colm_hydraulics) (mixed)
    logical, intent(out), optional :: seeded_out(nl_soil) ! state_out holds that state (-)
    real(r8) :: vol_liq, vol_ice                    ! volumetric contents (m3 m-3)
    real(r8) :: st(4)                               ! hydraulic state from layer_state_theta (mixed)
    logical :: seeded                               ! layer_state_theta applied (-)
    real(r8) :: smp, dsmp                           ! matric potential (mm) and its derivative (mm)
    real(r8) :: w                                   ! wilting factor (-)
    real(r8) :: smpso, smpsc                        ! stomata open / closed potentials (mm)
    integer :: j
    smpso = vegpar(VP_SMPSO)
    smpsc = vegpar(VP_SMPSC)
    if (present(smp_out)) smp_out = 1.0_r8
    if (present(seeded_out)) seeded_out = .false.
    do j = 1, nl_soil
      rootr(j) = 0.0_r8
      if (t_soil(j) > tfrz .and. wliq_soil(j) > 0.0_r8 .and. soilpar(SP_ROOTFR, j) > 0.0_r8) then
        vol_liq = wliq_soil(j) / (dz_soil(j) * denh2o)
        vol_ice = wice_soil(j) / (dz_soil(j) * denice)
        if (present(hl0) .and. vol_ice <= 0.0_r8) then
          ! the same potential as below without ice; with the state there the solver needs at its start
          call layer_state_theta(hl0(j), vol_liq, smp, st(1), st(2), st(3), st(4), seeded)
          if (.not. seeded) call layer_matric_potential(hl0(j), vol_liq, smp, dsmp)
          if (present(smp_out)) smp_out(j) = smp
          if (present(state_out) .and. present(seeded_out) .and. seeded) then
            state_out(:, j) = st
            seeded_out(j) = .true.
          end if
        else
          call soil_matric_potential(hydr_model, soilpar(:, j), vol_liq, vol_ice, smp, dsmp)
        end if
        w = (smpsc - smp) / (smpsc - smpso)
        w = w * max(soilpar(SP_THETA_S, j) - vol_ice, 0.0_r8) / soilpar(SP_THETA_S, j)
        rootr(j) = soilpar(SP_ROOTFR, j) * min(max(w, 0.0_r8), 1.0_r8)
      end if
    end do
    btran = sum(rootr)
    if (btran > 0.0_r8) then
      rootr = rootr / btran
      btran = min(btran, 1.0_r8)
    else
      btran = 0.0_r8
    end if
  end subroutine soil_water_stress

  ! Constants of the soil resistance that depend on the soil parameters only: the air-dry content at -1e7 mm
  ! and the tortuosity factor.
  pure subroutine soil_evap_params(sp, hydr_model, aird, tort)
    real(r8), intent(in) :: sp(NSP)                 ! soil parameters of layer 1 (mixed)
    integer(ik), intent(in) :: hydr_model           ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(out) :: aird                   ! air-dry water content at -1e7 mm (m3 m-3)
    real(r8), intent(out) :: tort                   ! tortuosity factor (-)
    real(r8) :: ths, eps, mvg                       ! porosity (m3 m-3), air-filled porosity (-), vG m (-)
    ths = sp(SP_THETA_S)
    if (hydr_model == 2 .or. hydr_model == 3) then
      mvg = 1.0_r8 - 1.0_r8 / sp(SP_N_VG)
      aird = sp(SP_THETA_R) + (ths - sp(SP_THETA_R)) * (1.0_r8 + (sp(SP_ALPHA_VG) * 1.0e7_r8)**sp(SP_N_VG))**(-mvg)
    else if (hydr_model == 4) then
      aird = sp(SP_THETA_R) + (ths - sp(SP_THETA_R)) * exp(-min(sp(SP_ALPHA_VG) * 1.0e7_r8, 700.0_r8))
    else
      aird = ths * (sp(SP_PSI_S) / (-1.0e7_r8))**(1.0_r8 / sp(SP_BSW))
    end if
    eps = max(ths - aird, 1.0e-3_r8)
    tort = eps * eps * (eps / ths)**(3.0_r8 / max(sp(SP_BSW), 3.0_r8))
  end subroutine soil_evap_params

  ! Soil surface evaporation resistance (SL14) and relative humidity of the soil pores of soil layer 1.
  pure subroutine soil_evap_resistance(sp, hydr_model, t1, wliq1, wice1, dz1, rss, hr, hl1, evp)
    real(r8), intent(in) :: sp(NSP)                 ! soil parameters of layer 1 (mixed)
    integer(ik), intent(in) :: hydr_model           ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: t1                      ! temperature of soil layer 1 (K)
    real(r8), intent(in) :: wliq1, wice1            ! liquid water and ice of soil layer 1 (kg m-2)
    real(r8), intent(in) :: dz1                     ! thickness of soil layer 1 (m)
    real(r8), intent(out) :: rss                    ! soil surface resistance (s m-1)
    real(r8), intent(out) :: hr                     ! relative humidity of the soil pores (-)
    type(hyd_layer_t), intent(in), optional :: hl1  ! hyd_layer of layer 1 without ice (mixed)
    real(r8), intent(in), optional :: evp(2)        ! soil_evap_params of layer 1: aird, tort (-)
    real(r8) :: ths, vol_liq, vol_ice, eff_por      ! contents (m3 m-3)
    real(r8) :: aird                                ! air-dry water content at -1e7 mm (m3 m-3)
    real(r8) :: tort, d0, dsl                       ! tortuosity (-), diffusivity (m2 s-1), DSL (m)
    real(r8) :: tr                                  ! T / 273.15 K (-)
    real(r8) :: smp, dsmp                           ! matric potential (mm), derivative
    ths = sp(SP_THETA_S)
    vol_liq = max(wliq1, 0.0_r8) / (dz1 * denh2o)
    vol_ice = max(wice1, 0.0_r8) / (dz1 * denice)
    eff_por = max(0.01_r8, ths - min(ths, vol_ice))
    if (present(evp)) then
      aird = evp(1)
      tort = evp(2)
    else
      call soil_evap_params(sp, hydr_model, aird, tort)
    end if
    tr = t1 / 273.15_r8
    d0 = 2.12e-5_r8 * tr * sqrt(tr) * sqrt(sqrt(tr))  ! (T/273.15)^1.75 without pow
    dsl = dz1 * max(1.0e-6_r8, 0.8_r8 * eff_por - vol_liq) / max(1.0e-6_r8, 0.8_r8 * ths - aird)
    dsl = min(max(dsl, 0.0_r8), 0.2_r8)
    rss = min(dsl / (d0 * tort), 1.0e6_r8)
    if (vol_liq > 0.0_r8) then
      if (present(hl1) .and. vol_ice <= 0.0_r8) then
        call layer_matric_potential(hl1, vol_liq, smp, dsmp)
      else
        call soil_matric_potential(hydr_model, sp, vol_liq, vol_ice, smp, dsmp)
      end if
      smp = max(smp, smpmin)
    else
      smp = smpmin
    end if
    hr = exp(grav * smp * 1.0e-3_r8 / (rwat * t1))
  end subroutine soil_evap_resistance

  ! Turbulent, longwave and water fluxes of the surface for one step (header). t_top = t_soisno(snl+1).
  pure subroutine surface_fluxes(tair, qair, psurf, wind, lwdown, zref, vegpar, lai, sai, rad, snl, fsno, &
                                 t_soisno, wliq_soisno, wice_soisno, dz_soisno, soilpar, hydr_model, ldew, dt, &
                                 tleaf, sf, co2_ppm, hl0, evp)
    real(r8), intent(in) :: tair                    ! air temperature at zref (K)
    real(r8), intent(in) :: qair                    ! specific humidity at zref (kg kg-1)
    real(r8), intent(in) :: psurf                   ! surface pressure (Pa)
    real(r8), intent(in) :: wind                    ! wind speed at zref (m s-1)
    real(r8), intent(in) :: lwdown                  ! downward longwave (W m-2)
    real(r8), intent(in) :: zref                    ! forcing height above the ground (m)
    real(r8), intent(in) :: vegpar(NVP)             ! PFT parameters VP_* (mixed)
    real(r8), intent(in) :: lai, sai                ! exposed leaf and stem area index (m2 m-2)
    type(surface_rad_t), intent(in) :: rad          ! shortwave results of surface_radiation
    integer, intent(in) :: snl                      ! minus the number of snow layers (-)
    real(r8), intent(in) :: fsno                    ! snow cover fraction (-)
    real(r8), intent(in) :: t_soisno(maxsnl+1:nl_soil)    ! layer temperature (K)
    real(r8), intent(in) :: wliq_soisno(maxsnl+1:nl_soil) ! layer liquid water (kg m-2)
    real(r8), intent(in) :: wice_soisno(maxsnl+1:nl_soil) ! layer ice (kg m-2)
    real(r8), intent(in) :: dz_soisno(maxsnl+1:nl_soil)   ! layer thickness (m)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)   ! soil parameters SP_* (mixed)
    integer(ik), intent(in) :: hydr_model           ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: ldew                    ! water intercepted on the canopy (kg m-2)
    real(r8), intent(in) :: dt                      ! time step (s)
    real(r8), intent(inout) :: tleaf                ! leaf temperature (K)
    type(surface_flux_t), intent(out) :: sf         ! fluxes
    real(r8), intent(in), optional :: co2_ppm       ! atmospheric CO2 (umol mol-1), default 400
    type(hyd_layer_t), intent(in), optional :: hl0(nl_soil) ! hyd_layer of the soil layers without ice (mixed)
    real(r8), intent(in), optional :: evp(2)        ! soil_evap_params of soil layer 1 (-)
    real(r8) :: co2                                 ! CO2 used (umol mol-1)
    real(r8) :: tg                                  ! top-layer temperature (K)
    real(r8) :: th, ea_air                          ! potential temperature (K), vapour pressure (Pa)
    real(r8) :: fsn, fsv                            ! snow fraction for radiation / for vapour exchange (-)
    real(r8) :: z0mg                                ! ground momentum roughness (m)
    real(r8) :: eg, degdt, qsatg, dqsatg            ! ground saturation values (Pa, Pa K-1, kg kg-1, kg kg-1 K-1)
    real(r8) :: hr                                  ! soil pore humidity (-)
    real(r8) :: qsoil, dqsoil                       ! humidity of the soil pores and its derivative (kg kg-1, kg kg-1 K-1)
    real(r8) :: rss                                 ! soil resistance (s m-1)
    integer :: lb                                   ! top layer index (-)

    co2 = co2_default_ppm
    if (present(co2_ppm)) co2 = co2_ppm
    lb = snl + 1
    tg = t_soisno(lb)
    sf%t_top0 = tg
    sf%sabv = rad%sabv
    sf%sabg = rad%sabg
    sf%lwdown = lwdown
    fsn = min(max(fsno, 0.0_r8), 1.0_r8)
    th = tair + grav / cpair * zref
    ea_air = qair * psurf / (0.622_r8 + 0.378_r8 * qair)
    sf%rhoair = (psurf - 0.378_r8 * ea_air) / (rgas * tair)

    ! ground properties
    sf%emg = (1.0_r8 - fsn) * emg_soil + fsn * emg_snow
    z0mg = (1.0_r8 - fsn) * zlnd + fsn * zsno
    if (wliq_soisno(lb) <= 0.0_r8 .and. wice_soisno(lb) > 0.0_r8) then
      sf%htvp_g = hsub
    else
      sf%htvp_g = hvap
    end if
    fsv = fsn
    if (snl < 0) fsv = 1.0_r8                       ! the top layer is snow: no soil exchange at t_top
    call qsat(tg, psurf, eg, degdt, qsatg, dqsatg)
    if (present(hl0)) then
      call soil_evap_resistance(soilpar(:, 1), hydr_model, t_soisno(1), wliq_soisno(1), wice_soisno(1), &
                                dz_soisno(1), rss, hr, hl1=hl0(1), evp=evp)
    else
      call soil_evap_resistance(soilpar(:, 1), hydr_model, t_soisno(1), wliq_soisno(1), wice_soisno(1), &
                                dz_soisno(1), rss, hr, evp=evp)
    end if
    ! Soil-pore humidity. Air drier than saturation but moister than the pores: no exchange (q_soil = q_air,
    ! CLM4.5), so dry soil does not adsorb vapour; the diffusion barrier only acts on evaporation.
    qsoil = hr * qsatg
    dqsoil = hr * dqsatg
    if (qsatg > qair .and. qair > qsoil) then
      qsoil = qair
      dqsoil = 0.0_r8
    end if
    sf%rss = rss
    if (qsoil <= qair) rss = 0.0_r8

    call soil_water_stress(vegpar, soilpar, hydr_model, t_soisno(1:nl_soil), wliq_soisno(1:nl_soil), &
                           wice_soisno(1:nl_soil), dz_soisno(1:nl_soil), sf%btran, sf%rootr, hl0=hl0, &
                           smp_out=sf%smp_root, state_out=sf%state_root, seeded_out=sf%seeded_root)

    if (is_vegetated(vegpar(VP_ISVEG), lai, sai)) then
      sf%vegetated = 1
      call canopy_fluxes(sf, tair, qair, th, psurf, wind, lwdown, zref, vegpar, lai, sai, rad, tg, z0mg, &
                         fsv, qsatg, dqsatg, qsoil, dqsoil, rss, ldew, co2, tleaf)
    else
      sf%vegetated = 0
      tleaf = tair
      sf%tleaf = tair
      call bare_fluxes(sf, qair, th, wind, lwdown, zref, tg, z0mg, fsv, qsatg, dqsatg, qsoil, dqsoil, rss)
    end if

    ! heat flux into the top layer at t_top0 and its derivative
    sf%lwg_emit0 = sf%emg * stefnc * tg**4
    sf%dlwg_dt = 4.0_r8 * sf%emg * stefnc * tg**3
    sf%hflx0 = sf%sabg + sf%emg * sf%lw_below - sf%lwg_emit0 - sf%hg0 &
               - sf%htvp_g * (sf%fevpg_snow0 + sf%fevpg_soil0)
    sf%dhflx_dt = -sf%dlwg_dt - sf%dhg_dt - sf%htvp_g * (sf%dfevpg_snow_dt + sf%dfevpg_soil_dt)

    ! preliminary totals at t_top0, canopy evaporation limited to ldew (final ones: update_ground_fluxes)
    call update_ground_fluxes(0.0_r8, huge(1.0_r8), ldew, dt, sf)
  end subroutine surface_fluxes

  ! Ground fluxes without a canopy: Monin-Obukhov iteration between the ground and zref.
  pure subroutine bare_fluxes(sf, qair, th, wind, lwdown, zref, tg, z0mg, fsv, qsatg, dqsatg, qsoil, dqsoil, rss)
    type(surface_flux_t), intent(inout) :: sf       ! fluxes (rhoair, emg set on entry)
    real(r8), intent(in) :: qair                    ! specific humidity at zref (kg kg-1)
    real(r8), intent(in) :: th                      ! potential temperature at zref (K)
    real(r8), intent(in) :: wind                    ! wind speed (m s-1)
    real(r8), intent(in) :: lwdown                  ! downward longwave (W m-2)
    real(r8), intent(in) :: zref                    ! forcing height (m)
    real(r8), intent(in) :: tg                      ! top-layer temperature (K)
    real(r8), intent(in) :: z0mg                    ! ground momentum roughness (m)
    real(r8), intent(in) :: fsv                     ! snow fraction for vapour exchange (-)
    real(r8), intent(in) :: qsatg, dqsatg           ! saturation humidity at tg and derivative (kg kg-1, kg kg-1 K-1)
    real(r8), intent(in) :: qsoil, dqsoil           ! soil-pore humidity and derivative (kg kg-1, kg kg-1 K-1)
    real(r8), intent(in) :: rss                     ! soil resistance (s m-1)
    real(r8) :: zldis, ur, um, umold, obu, obuold   ! heights (m), winds (m s-1), Obukhov lengths (m)
    real(r8) :: thv, dth, dqh, dthv                 ! (K, K, kg kg-1, K)
    real(r8) :: z0hg                                ! ground thermal roughness (m)
    real(r8) :: lzm, lzh                            ! log(zldis / z0mg), log(zldis / z0hg) (-)
    real(r8) :: kh                                  ! log(z0mg / z0hg) (-)
    real(r8) :: fm, fh, fq, ustar                   ! profile integrals (-), friction velocity (m s-1)
    real(r8) :: rah, raw                            ! resistances (s m-1)
    real(r8) :: hflux, eflux, tstar, qstar          ! fluxes (W m-2, kg m-2 s-1), scales (K, kg kg-1)
    real(r8) :: csn, cso                            ! vapour conductances of snow and soil parts (m s-1)
    real(r8) :: dzeta, wrelax                       ! last change of z/L (-), stability relaxation weight (-)
    integer :: it
    zldis = max(zref, 2.0_r8)
    ur = max(wind, 0.1_r8)
    thv = th * (1.0_r8 + 0.61_r8 * qair)
    dth = th - tg
    dqh = qair - (fsv * qsatg + (1.0_r8 - fsv) * qsoil)
    dthv = dth * (1.0_r8 + 0.61_r8 * qair) + 0.61_r8 * th * dqh
    lzm = log(zldis / z0mg)                         ! (the log heights are passed on to save logs)
    call obukhov_initial(ur, thv, dthv, zldis, z0mg, um, obu, lzm=lzm)
    z0hg = z0mg
    lzh = lzm
    dzeta = 0.0_r8
    wrelax = 1.0_r8
    do it = 1, itmax_bare
      call bare_state(zldis, z0mg, z0hg, lzm, lzh, obu, um, fsv, rss, sf%rhoair, tg, th, qair, qsatg, qsoil, &
                      fm, fh, fq, ustar, rah, raw, csn, cso, hflux, eflux)
      tstar = -hflux / (sf%rhoair * cpair * ustar)
      qstar = -eflux / (sf%rhoair * ustar)
      obuold = obu
      umold = um
      call obukhov_update(ur, ustar, tstar, qstar, th, qair, zldis, obu, um)
      call relax_obukhov(zldis, obuold, umold, obu, um, dzeta, wrelax)
      ! Zeng and Dickinson (1998) thermal roughness
      kh = log_z0m_z0h(z0mg, ustar)
      z0hg = z0mg * exp(-kh)
      lzh = lzm + kh
      if (it >= 3 .and. abs(zldis / obu - zldis / obuold) < 0.01_r8) exit
    end do
    call bare_state(zldis, z0mg, z0hg, lzm, lzh, obu, um, fsv, rss, sf%rhoair, tg, th, qair, qsatg, qsoil, &
                    fm, fh, fq, ustar, rah, raw, csn, cso, hflux, eflux)
    sf%ustar = ustar
    sf%obu = obu
    sf%ram = fm / (vonkar * ustar)
    sf%rah = rah
    sf%raw = raw
    sf%taf = th
    sf%qaf = qair
    sf%emv = 0.0_r8
    sf%lw_below = lwdown
    sf%hg0 = hflux
    sf%dhg_dt = sf%rhoair * cpair / rah
    sf%fevpg_snow0 = sf%rhoair * csn * (qsatg - qair)
    sf%fevpg_soil0 = sf%rhoair * cso * (qsoil - qair)
    sf%dfevpg_snow_dt = sf%rhoair * csn * dqsatg
    sf%dfevpg_soil_dt = sf%rhoair * cso * dqsoil
    sf%hv0 = 0.0_r8
    sf%fevpl0 = 0.0_r8
    sf%etr = 0.0_r8
    sf%gpp = 0.0_r8
  end subroutine bare_fluxes

  ! Profile, resistances and fluxes over bare ground for a given Obukhov length.
  pure subroutine bare_state(zldis, z0mg, z0hg, lzm, lzh, obu, um, fsv, rss, rho, tg, th, qair, qsatg, qsoil, &
                             fm, fh, fq, ustar, rah, raw, csn, cso, hflux, eflux)
    real(r8), intent(in) :: zldis                   ! reference height (m)
    real(r8), intent(in) :: z0mg, z0hg              ! momentum and thermal roughness (m)
    real(r8), intent(in) :: lzm, lzh                ! log(zldis / z0mg), log(zldis / z0hg) (-)
    real(r8), intent(in) :: obu                     ! Obukhov length (m)
    real(r8), intent(in) :: um                      ! wind including convective velocity (m s-1)
    real(r8), intent(in) :: fsv                     ! snow fraction for vapour exchange (-)
    real(r8), intent(in) :: rss                     ! soil resistance (s m-1)
    real(r8), intent(in) :: rho                     ! air density (kg m-3)
    real(r8), intent(in) :: tg, th                  ! ground and reference potential temperature (K)
    real(r8), intent(in) :: qair, qsatg             ! air and ground saturation humidity (kg kg-1)
    real(r8), intent(in) :: qsoil                   ! soil-pore humidity (kg kg-1)
    real(r8), intent(out) :: fm, fh, fq             ! profile integrals (-)
    real(r8), intent(out) :: ustar                  ! friction velocity (m s-1)
    real(r8), intent(out) :: rah, raw               ! aerodynamic resistances (s m-1)
    real(r8), intent(out) :: csn, cso               ! vapour conductances of the snow and soil parts (m s-1)
    real(r8), intent(out) :: hflux                  ! sensible heat (W m-2)
    real(r8), intent(out) :: eflux                  ! evaporation (kg m-2 s-1)
    call mo_profile(zldis, z0mg, z0hg, z0hg, obu, fm, fh, fq, lzm=lzm, lzh=lzh)
    ustar = vonkar * um / fm
    rah = fh / (vonkar * ustar)
    raw = fq / (vonkar * ustar)
    csn = fsv / raw
    cso = (1.0_r8 - fsv) / (raw + rss)
    hflux = rho * cpair * (tg - th) / rah
    eflux = rho * (csn * (qsatg - qair) + cso * (qsoil - qair))
  end subroutine bare_state

  ! Leaf temperature and canopy / under-canopy fluxes (header).
  pure subroutine canopy_fluxes(sf, tair, qair, th, psurf, wind, lwdown, zref, vegpar, lai, sai, rad, tg, z0mg, &
                                fsv, qsatg, dqsatg, qsoil, dqsoil, rss, ldew, co2, tleaf)
    type(surface_flux_t), intent(inout) :: sf       ! fluxes (rhoair, emg, btran set on entry)
    real(r8), intent(in) :: tair                    ! air temperature (K)
    real(r8), intent(in) :: qair                    ! specific humidity at zref (kg kg-1)
    real(r8), intent(in) :: th                      ! potential temperature at zref (K)
    real(r8), intent(in) :: psurf                   ! pressure (Pa)
    real(r8), intent(in) :: wind                    ! wind speed (m s-1)
    real(r8), intent(in) :: lwdown                  ! downward longwave (W m-2)
    real(r8), intent(in) :: zref                    ! forcing height (m)
    real(r8), intent(in) :: vegpar(NVP)             ! PFT parameters (mixed)
    real(r8), intent(in) :: lai, sai                ! leaf and stem area index (m2 m-2)
    type(surface_rad_t), intent(in) :: rad          ! shortwave results
    real(r8), intent(in) :: tg                      ! top-layer temperature (K)
    real(r8), intent(in) :: z0mg                    ! ground momentum roughness (m)
    real(r8), intent(in) :: fsv                     ! snow fraction for vapour exchange (-)
    real(r8), intent(in) :: qsatg, dqsatg           ! ground saturation humidity and derivative (kg kg-1, kg kg-1 K-1)
    real(r8), intent(in) :: qsoil, dqsoil           ! soil-pore humidity and derivative (kg kg-1, kg kg-1 K-1)
    real(r8), intent(in) :: rss                     ! soil resistance (s m-1)
    real(r8), intent(in) :: ldew                    ! intercepted water (kg m-2)
    real(r8), intent(in) :: co2                     ! CO2 (umol mol-1)
    real(r8), intent(inout) :: tleaf                ! leaf temperature (K)
    real(r8) :: lsai, egvf, displa, z0mv, zref_eff, zldis  ! canopy geometry (m2 m-2, -, m, m, m, m)
    real(r8) :: ur, um, umold, obu, obuold, thv, dth, dqh, dthv ! (m s-1, m s-1, m s-1, m, m, K, K, kg kg-1, K)
    real(r8) :: fm, fh, fq, ustar, rah, raw, rb, rd ! profile integrals (-), u* (m s-1), resistances (s m-1)
    real(r8) :: csoilcn, w                          ! under-canopy transfer coefficient (-), weight (-)
    real(r8) :: cah, cgh, cfh, caw, cgw, cfw        ! conductances (m s-1)
    real(r8) :: csn, cso                            ! ground vapour conductances, snow and soil parts (m s-1)
    real(r8) :: qg, dqg                             ! effective ground humidity and derivative (kg kg-1, kg kg-1 K-1)
    real(r8) :: gdry, gwet                          ! transpiring and wet-leaf vapour conductances (m s-1)
    real(r8) :: sumh, sumw                          ! conductance sums (m s-1)
    real(r8) :: tv, dtv, dtv_prev                   ! leaf temperature and its changes (K)
    real(r8) :: el, deldt, qsatl, dqsatl            ! leaf saturation values (Pa, Pa K-1, kg kg-1, kg kg-1 K-1)
    real(r8) :: taf, qaf                            ! canopy air (K, kg kg-1)
    real(r8) :: hv, ev, irab, dirab, fres, dfres    ! fluxes (W m-2, kg m-2 s-1), LW (W m-2, W m-2 K-1), residual
    real(r8) :: le_old, dele, dele_prev             ! latent heat and its changes (W m-2)
    real(r8) :: emv, emg, htvp_v, rho               ! emissivities (-), latent heat (J kg-1), air density (kg m-3)
    real(r8) :: ir0, ir4                            ! leaf net longwave irab = ir0 + ir4 T^4 (W m-2, W m-2 K-4)
    real(r8) :: ea_caf                              ! canopy air vapour pressure (Pa)
    real(r8) :: an, ag, rdk, ci, cs, gs             ! photosynthesis outputs (mol m-2 s-1, Pa)
    real(r8) :: rs_sun, rs_sha, ag_sun, ag_sha      ! stomatal resistances (s m-1), gross assimilation (mol m-2 s-1)
    real(r8) :: an_sun, an_sha                      ! net assimilation (mol m-2 s-1)
    real(r8) :: ci_sun, ci_sha                      ! intercellular CO2 of the previous iteration, 0 = none (Pa)
    type(photo_temp_t) :: pt                        ! temperature factors of the leaf biochemistry at tv (mixed)
    real(r8) :: lzm                                 ! log(zldis / z0mv) (-)
    real(r8) :: fwet                                ! wet fraction of the canopy (-)
    real(r8) :: dzeta, wrelax                       ! last change of z/L (-), stability relaxation weight (-)
    logical :: c3, evaporating
    integer :: it

    rho = sf%rhoair
    emg = sf%emg
    lsai = lai + sai
    c3 = vegpar(VP_C3) > 0.5_r8
    fwet = wet_fraction(ldew, lai, sai)
    sf%fwet = fwet
    w = exp(-lsai)                                  ! (also the under-canopy weight in the iteration)
    emv = 1.0_r8 - w
    sf%emv = emv
    ! Leaf net longwave: the canopy absorbs emv of the sky and of the ground's upward stream (emission plus
    ! reflected sky and canopy radiation) and emits from both faces; the T-independent part once here.
    ir0 = emv * (lwdown + emg * stefnc * tg**4 + (1.0_r8 - emg) * (1.0_r8 - emv) * lwdown)
    ir4 = emv * ((1.0_r8 - emg) * emv - 2.0_r8) * stefnc

    ! aerodynamic geometry: sparse-canopy blend towards bare ground, forcing at least 1 m above the canopy
    ! egvf = (1 - exp(-min(L+S, 2))) / (1 - exp(-2)), with exp(-(L+S)) = w; a dense canopy needs no blend
    if (lsai < 2.0_r8) then
      egvf = (1.0_r8 - w) / (1.0_r8 - exp(-2.0_r8))
      z0mv = exp(egvf * log(max(vegpar(VP_Z0M), 1.0e-4_r8)) + (1.0_r8 - egvf) * log(z0mg))
    else
      egvf = 1.0_r8
      z0mv = max(vegpar(VP_Z0M), 1.0e-4_r8)
    end if
    displa = egvf * vegpar(VP_DISPLA)
    zref_eff = max(zref, vegpar(VP_HTOP) + 1.0_r8)
    zldis = zref_eff - displa
    lzm = log(zldis / z0mv)                          ! (fixed over the leaf-temperature iteration)

    tv = tleaf
    if (tv < 150.0_r8 .or. tv > 400.0_r8) tv = tair
    taf = 0.5_r8 * (tg + th)
    qaf = 0.5_r8 * (qair + fsv * qsatg + (1.0_r8 - fsv) * qsoil)
    ur = max(wind, 0.1_r8)
    thv = th * (1.0_r8 + 0.61_r8 * qair)
    dth = th - taf
    dqh = qair - qaf
    dthv = dth * (1.0_r8 + 0.61_r8 * qair) + 0.61_r8 * th * dqh
    call obukhov_initial(ur, thv, dthv, zldis, z0mv, um, obu, lzm=lzm)

    dtv = 0.0_r8
    dele = 0.0_r8
    dzeta = 0.0_r8
    wrelax = 1.0_r8
    rs_sun = 1.0e4_r8
    rs_sha = 1.0e4_r8
    ag_sun = 0.0_r8
    ag_sha = 0.0_r8
    an_sun = 0.0_r8
    an_sha = 0.0_r8
    ci_sun = 0.0_r8
    ci_sha = 0.0_r8
    htvp_v = hvap
    do it = 1, itmax
      dtv_prev = dtv
      dele_prev = dele
      if (tv > tfrz) then
        htvp_v = hvap
      else
        htvp_v = hsub
      end if

      ! resistances from the stability of the previous iteration
      call mo_profile(zldis, z0mv, z0mv, z0mv, obu, fm, fh, fq, lzm=lzm)
      ustar = vonkar * um / fm
      rah = fh / (vonkar * ustar)
      raw = fq / (vonkar * ustar)
      rb = 1.0_r8 / (cv_leaf * sqrt(ustar / vegpar(VP_DLEAF)))
      csoilcn = vonkar / log_z0m_z0h(z0mg, ustar) * w + csoilc * (1.0_r8 - w)
      rd = 1.0_r8 / (csoilcn * ustar)

      ! saturation at the leaf: computed at the end of the previous iteration at the same tv
      if (it == 1) call qsat(tv, psurf, el, deldt, qsatl, dqsatl)

      ! stomatal resistances of the two big leaves at the current leaf temperature and canopy air humidity
      ! (the temperature factors of the biochemistry once for both)
      ea_caf = qaf * psurf / (0.622_r8 + 0.378_r8 * qaf)
      if (rad%lai_sun > 0.0_r8 .or. rad%lai_sha > 0.0_r8) call photo_temperature(c3, tv, psurf, pt)
      if (rad%lai_sun > 0.0_r8) then
        call leaf_photosynthesis(c3, vegpar(VP_VCMAX25) * rad%fn_sun, vegpar(VP_EFFCON), vegpar(VP_G1), &
                                 vegpar(VP_G0), sf%btran, rad%apar_sun, tv, psurf, co2, ea_caf, rb, &
                                 an, ag, rdk, ci, cs, gs, rs_sun, ci_guess=ci_sun, pt_in=pt, ei_in=el)
        ci_sun = ci
        an_sun = an
        ag_sun = ag
      end if
      if (rad%lai_sha > 0.0_r8) then
        call leaf_photosynthesis(c3, vegpar(VP_VCMAX25) * rad%fn_sha, vegpar(VP_EFFCON), vegpar(VP_G1), &
                                 vegpar(VP_G0), sf%btran, rad%apar_sha, tv, psurf, co2, ea_caf, rb, &
                                 an, ag, rdk, ci, cs, gs, rs_sha, ci_guess=ci_sha, pt_in=pt, ei_in=el)
        ci_sha = ci
        an_sha = an
        ag_sha = ag
      end if

      ! conductances
      cah = 1.0_r8 / rah
      cgh = 1.0_r8 / rd
      cfh = lsai / rb
      caw = 1.0_r8 / raw
      csn = fsv / rd
      cso = (1.0_r8 - fsv) / (rd + rss)
      cgw = csn + cso
      qg = (csn * qsatg + cso * qsoil) / cgw
      dqg = (csn * dqsatg + cso * dqsoil) / cgw
      evaporating = qsatl > qaf
      if (evaporating) then
        gdry = (1.0_r8 - fwet) * (rad%lai_sun / (rb + rs_sun) + rad%lai_sha / (rb + rs_sha))
        gwet = fwet * lsai / rb
      else
        gdry = 0.0_r8
        gwet = lsai / rb
      end if
      cfw = gdry + gwet

      ! leaf energy balance and its derivative at tv (ground temperature held)
      call leaf_state(tv, qsatl, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, ir0, ir4, &
                      sumh, sumw, taf, qaf, hv, ev, irab, dirab)
      fres = sf%sabv + irab - hv - htvp_v * ev
      dfres = dirab - rho * cpair * cfh * (1.0_r8 - cfh / sumh) &
              - htvp_v * rho * cfw * dqsatl * (1.0_r8 - cfw / sumw)
      le_old = htvp_v * ev
      dtv = -fres / dfres
      dtv = max(-delmax, min(delmax, dtv))
      ! a reversal of direction means the root was overshot: at most half the previous step
      if (dtv * dtv_prev < 0.0_r8) dtv = sign(min(abs(dtv), 0.5_r8 * abs(dtv_prev)), dtv)
      tv = tv + dtv
      call qsat(tv, psurf, el, deldt, qsatl, dqsatl)
      call leaf_state(tv, qsatl, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, ir0, ir4, &
                      sumh, sumw, taf, qaf, hv, ev, irab, dirab)
      dele = abs(htvp_v * ev - le_old)

      ! stability from the fluxes between the canopy air and the reference height
      obuold = obu
      umold = um
      call obukhov_update(ur, ustar, (th - taf) / (rah * ustar), (qair - qaf) / (raw * ustar), th, qair, &
                          zldis, obu, um)
      call relax_obukhov(zldis, obuold, umold, obu, um, dzeta, wrelax)

      sf%niter = it
      if (it >= itmin .and. max(abs(dtv), abs(dtv_prev)) < dtmin .and. max(dele, dele_prev) < dlemin) exit
    end do

    ! Final leaf temperature: the balance solved exactly at the resistances of the last iteration (the
    ! stability and stomata lag one iteration, as in CoLM); whatever remains is moved into hv.
    call solve_leaf_balance(tv, sf%sabv, htvp_v, psurf, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, &
                            ir0, ir4, qsatl, sumh, sumw, taf, qaf, hv, ev, fres)
    sf%leaf_res_conv = fres
    sf%hv0 = hv + fres
    tleaf = tv
    sf%tleaf = tv
    sf%taf = taf
    sf%qaf = qaf
    sf%htvp_v = htvp_v
    if (qsatl >= qaf) then
      sf%etr = rho * gdry * (qsatl - qaf)
      sf%fevpl0 = rho * gwet * (qsatl - qaf)
    else
      sf%etr = 0.0_r8
      sf%fevpl0 = ev
    end if
    sf%rs_sun = rs_sun
    sf%rs_sha = rs_sha
    sf%an_sun = an_sun
    sf%an_sha = an_sha
    sf%gpp = (ag_sun * rad%lai_sun + ag_sha * rad%lai_sha) * mol_to_kgc
    sf%rb = rb
    sf%rd = rd
    sf%ustar = ustar
    sf%obu = obu
    sf%ram = fm / (vonkar * ustar)
    sf%rah = rah
    sf%raw = raw
    sf%lw_below = (1.0_r8 - emv) * lwdown + emv * stefnc * tv**4

    ! ground fluxes at tg with the leaf temperature held, and their derivatives
    sf%hg0 = rho * cpair * cgh * (tg - taf)
    sf%dhg_dt = rho * cpair * cgh * (1.0_r8 - cgh / sumh)
    sf%fevpg_snow0 = rho * csn * (qsatg - qaf)
    sf%fevpg_soil0 = rho * cso * (qsoil - qaf)
    sf%dfevpg_snow_dt = rho * csn * (dqsatg - cgw * dqg / sumw)
    sf%dfevpg_soil_dt = rho * cso * (dqsoil - cgw * dqg / sumw)
  end subroutine canopy_fluxes

  ! Leaf energy balance f(T) = sabv + irab(T) - hv(T) - htvp ev(T) = 0 at fixed conductances. f decreases
  ! strictly with T (emission, sensible and latent heat all grow with T), so the root is unique: Newton steps
  ! safeguarded by bisection inside a bracket found by doubling steps from the start value. Returns the leaf
  ! state at the root (kept from the last evaluation when that was at the root).
  pure subroutine solve_leaf_balance(tv, sabv, htvp, psurf, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, &
                                     ir0, ir4, qsatl, sumh, sumw, taf, qaf, hv, ev, fres)
    real(r8), intent(inout) :: tv                   ! leaf temperature: start value in, root out (K)
    real(r8), intent(in) :: sabv                    ! shortwave absorbed by the canopy (W m-2)
    real(r8), intent(in) :: htvp                    ! latent heat of the canopy water exchange (J kg-1)
    real(r8), intent(in) :: psurf                   ! air pressure (Pa)
    real(r8), intent(in) :: cah, cgh, cfh           ! heat conductances air, ground, leaves (m s-1)
    real(r8), intent(in) :: caw, cgw, cfw           ! vapour conductances air, ground, leaves (m s-1)
    real(r8), intent(in) :: th, tg                  ! reference potential temperature, ground temperature (K)
    real(r8), intent(in) :: qair, qg                ! reference and effective ground humidity (kg kg-1)
    real(r8), intent(in) :: rho                     ! air density (kg m-3)
    real(r8), intent(in) :: ir0, ir4                ! leaf net longwave ir0 + ir4 T^4 (W m-2, W m-2 K-4)
    real(r8), intent(out) :: qsatl                  ! saturation humidity at the root (kg kg-1)
    real(r8), intent(out) :: sumh, sumw             ! conductance sums (m s-1)
    real(r8), intent(out) :: taf, qaf               ! canopy air temperature (K) and humidity (kg kg-1)
    real(r8), intent(out) :: hv                     ! leaf sensible heat (W m-2)
    real(r8), intent(out) :: ev                     ! leaf evaporation + transpiration (kg m-2 s-1)
    real(r8), intent(out) :: fres                   ! leaf energy balance residual at the root (W m-2)
    real(r8) :: lo, hi, t, tn, f, df, flo, fhi, step ! bracket (K), residual (W m-2), derivative (W m-2 K-1)
    real(r8) :: f0, df0                             ! residual and derivative at the start value (W m-2, W m-2 K-1)
    real(r8) :: tlast                               ! temperature of the last evaluation, whose state is held (K)
    integer :: it
    call leaf_residual(tv, f, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
    if (abs(f) < 1.0e-9_r8) then
      fres = f
      return
    end if
    f0 = f
    df0 = df
    ! bracket the root
    step = 2.0_r8
    lo = tv
    hi = tv
    flo = f
    fhi = f
    do it = 1, 12
      if (f > 0.0_r8) then
        hi = tv + step
        call leaf_residual(hi, fhi, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
        tlast = hi
        if (fhi <= 0.0_r8) exit
        lo = hi
        flo = fhi
      else
        lo = tv - step
        call leaf_residual(lo, flo, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
        tlast = lo
        if (flo >= 0.0_r8) exit
        hi = lo
        fhi = flo
      end if
      step = 2.0_r8 * step
    end do
    if (flo < 0.0_r8 .or. fhi > 0.0_r8) then        ! no bracket within 8000 K: keep the iteration value
      call leaf_residual(tv, fres, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
      return
    end if
    t = tv
    f = f0                                          ! (the start value was evaluated above)
    df = df0
    do it = 1, 60
      if (it > 1) then
        call leaf_residual(t, f, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
        tlast = t
      end if
      if (abs(f) < 1.0e-9_r8) exit
      if (f > 0.0_r8) then
        lo = t
      else
        hi = t
      end if
      tn = t - f / df
      if (tn <= lo .or. tn >= hi) tn = 0.5_r8 * (lo + hi)
      if (abs(tn - t) < 1.0e-11_r8) exit
      t = tn
    end do
    tv = t
    fres = f
    if (tlast /= tv) call leaf_residual(tv, fres, df, qsatl, sumh, sumw, taf, qaf, hv, ev)
  contains
    ! Residual, derivative and leaf state at tx.
    pure subroutine leaf_residual(tx, fx, dfx, qs, sh, sw, ta, qa, h, e)
      real(r8), intent(in) :: tx                    ! leaf temperature (K)
      real(r8), intent(out) :: fx                   ! leaf energy balance residual (W m-2)
      real(r8), intent(out) :: dfx                  ! its derivative (W m-2 K-1)
      real(r8), intent(out) :: qs                   ! saturation humidity at tx (kg kg-1)
      real(r8), intent(out) :: sh, sw               ! conductance sums (m s-1)
      real(r8), intent(out) :: ta, qa               ! canopy air temperature (K) and humidity (kg kg-1)
      real(r8), intent(out) :: h                    ! leaf sensible heat (W m-2)
      real(r8), intent(out) :: e                    ! leaf evaporation + transpiration (kg m-2 s-1)
      real(r8) :: el, deldt, dqs, irab, dirab       ! (Pa, Pa K-1, kg kg-1 K-1, W m-2, W m-2 K-1)
      call qsat(tx, psurf, el, deldt, qs, dqs)
      call leaf_state(tx, qs, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, ir0, ir4, &
                      sh, sw, ta, qa, h, e, irab, dirab)
      fx = sabv + irab - h - htvp * e
      dfx = dirab - rho * cpair * cfh * (1.0_r8 - cfh / sh) - htvp * rho * cfw * dqs * (1.0_r8 - cfw / sw)
    end subroutine leaf_residual
  end subroutine solve_leaf_balance

  ! Canopy air state, leaf fluxes and leaf net longwave at leaf temperature t with fixed conductances:
  ! t_af and q_af are the conductance-weighted means of the atmosphere, ground and leaf values.
  pure subroutine leaf_state(t, qsatl, cah, cgh, cfh, caw, cgw, cfw, th, tg, qair, qg, rho, ir0, ir4, &
                             sumh, sumw, taf, qaf, hv, ev, irab, dirab)
    real(r8), intent(in) :: t                       ! leaf temperature (K)
    real(r8), intent(in) :: qsatl                   ! saturation humidity at t (kg kg-1)
    real(r8), intent(in) :: cah, cgh, cfh           ! heat conductances air, ground, leaves (m s-1)
    real(r8), intent(in) :: caw, cgw, cfw           ! vapour conductances air, ground, leaves (m s-1)
    real(r8), intent(in) :: th, tg                  ! reference potential temperature, ground temperature (K)
    real(r8), intent(in) :: qair, qg                ! reference and effective ground humidity (kg kg-1)
    real(r8), intent(in) :: rho                     ! air density (kg m-3)
    real(r8), intent(in) :: ir0, ir4                ! leaf net longwave ir0 + ir4 T^4 (W m-2, W m-2 K-4)
    real(r8), intent(out) :: sumh, sumw             ! conductance sums (m s-1)
    real(r8), intent(out) :: taf, qaf               ! canopy air temperature (K) and humidity (kg kg-1)
    real(r8), intent(out) :: hv                     ! leaf sensible heat (W m-2)
    real(r8), intent(out) :: ev                     ! leaf evaporation + transpiration (kg m-2 s-1)
    real(r8), intent(out) :: irab                   ! leaf net longwave (W m-2)
    real(r8), intent(out) :: dirab                  ! d irab / d t (W m-2 K-1)
    real(r8) :: t3                                  ! t^3 (K3)
    sumh = cah + cgh + cfh
    sumw = caw + cgw + cfw
    taf = (cah * th + cgh * tg + cfh * t) / sumh
    qaf = (caw * qair + cgw * qg + cfw * qsatl) / sumw
    hv = rho * cpair * cfh * (t - taf)
    ev = rho * cfw * (qsatl - qaf)
    t3 = t * t * t
    irab = ir0 + ir4 * t3 * t
    dirab = 4.0_r8 * ir4 * t3
  end subroutine leaf_state

  ! Final fluxes after the heat solve changed the top-layer temperature by dT_top (header). Idempotent: may be
  ! called again with another dT_top. Evaporation is limited to the available water; the excess energy goes
  ! into sensible heat of the same surface. SWnet + LWnet - Qh - Qle - G = 0 to round-off.
  pure subroutine update_ground_fluxes(dT_top, avail_ground_water, avail_canopy_water, dt, sf)
    real(r8), intent(in) :: dT_top                  ! change of the top-layer temperature in the heat solve (K)
    real(r8), intent(in) :: avail_ground_water      ! water that ground evaporation may remove this step (kg m-2)
    real(r8), intent(in) :: avail_canopy_water      ! water on the canopy that may evaporate this step (kg m-2)
    real(r8), intent(in) :: dt                      ! time step (s)
    type(surface_flux_t), intent(inout) :: sf       ! fluxes
    real(r8) :: emax, etot, scale                   ! evaporation limit and total (kg m-2 s-1), scaling (-)
    real(r8) :: lgup                                ! longwave leaving the ground upward (W m-2)
    real(r8) :: tv4                                 ! sigma T_leaf^4 (W m-2)

    sf%g = sf%hflx0 + sf%dhflx_dt * dT_top
    sf%hg = sf%hg0 + sf%dhg_dt * dT_top
    sf%fevpg_snow = sf%fevpg_snow0 + sf%dfevpg_snow_dt * dT_top
    sf%fevpg_soil = sf%fevpg_soil0 + sf%dfevpg_soil_dt * dT_top
    sf%lwg_emit = sf%lwg_emit0 + sf%dlwg_dt * dT_top

    ! ground evaporation limited by the available water; the energy goes to the ground sensible heat
    etot = sf%fevpg_snow + sf%fevpg_soil
    emax = max(avail_ground_water, 0.0_r8) / dt
    sf%excess_ground = 0.0_r8
    if (etot > emax) then
      sf%excess_ground = etot - emax
      scale = emax / etot
      sf%fevpg_snow = sf%fevpg_snow * scale
      sf%fevpg_soil = sf%fevpg_soil * scale
      sf%hg = sf%hg + sf%htvp_g * sf%excess_ground
    end if
    sf%fevpg = sf%fevpg_snow + sf%fevpg_soil

    ! canopy evaporation limited by the intercepted water; the energy goes to the canopy sensible heat
    sf%fevpl = sf%fevpl0
    sf%hv = sf%hv0
    sf%excess_canopy = 0.0_r8
    emax = max(avail_canopy_water, 0.0_r8) / dt
    if (sf%fevpl > emax) then
      sf%excess_canopy = sf%fevpl - emax
      sf%fevpl = emax
      sf%hv = sf%hv + sf%htvp_v * sf%excess_canopy
    end if

    ! longwave with the new ground emission; the canopy absorbs e_v of its change, moved into hv
    lgup = sf%lwg_emit + (1.0_r8 - sf%emg) * sf%lw_below
    tv4 = stefnc * sf%tleaf**4
    sf%lwup = (1.0_r8 - sf%emv) * lgup + sf%emv * tv4
    if (sf%vegetated == 1) then
      sf%hv = sf%hv + sf%emv * sf%dlwg_dt * dT_top
      sf%leaf_res = sf%leaf_res_conv + sf%emv * sf%dlwg_dt * dT_top
    else
      sf%leaf_res = 0.0_r8
    end if

    sf%swnet = sf%sabv + sf%sabg
    sf%lwnet = sf%lwdown - sf%lwup
    sf%qh = sf%hv + sf%hg
    sf%qle = sf%htvp_v * (sf%fevpl + sf%etr) + sf%htvp_g * sf%fevpg
    sf%evap = sf%fevpl + sf%etr + sf%fevpg
    sf%trad = sqrt(sqrt(max(sf%lwup, 0.0_r8) / stefnc))
    sf%ebal_err = sf%swnet + sf%lwnet - sf%qh - sf%qle - sf%g
  end subroutine update_ground_fluxes
end module colm_canopy
